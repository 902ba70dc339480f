//! QEMU processes the test-bed starts: always killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};

/// What both sides of a migration boot.
#[derive(Debug, Clone)]
pub struct GuestSpec {
    /// The QEMU binary.
    pub qemu: PathBuf,
    /// Firmware directories (`-L`).
    pub data_dirs: Vec<PathBuf>,
    /// Guest kernel.
    pub kernel: PathBuf,
    /// Guest initramfs.
    pub initrd: PathBuf,
    /// Workload name passed to the guest (`kairos.workload=`).
    pub workload: String,
    /// The workload program handed to the guest through fw_cfg (it
    /// replaces the image's copy, so any file runs without rebuilding the
    /// image); None for the benchmarks.
    pub workload_file: Option<PathBuf>,
    /// Guest RAM, MiB.
    pub ram_mib: u64,
    /// `tcg` or `kvm`.
    pub accel: String,
}

/// A running QEMU; killed on drop.
pub struct QemuProcess {
    child: Child,
    /// Its QMP socket.
    pub qmp_path: PathBuf,
    /// Its serial console log.
    pub serial_log: PathBuf,
    /// Its own stdout/stderr.
    pub qemu_log: PathBuf,
}

/// Where the QEMU of `role` ("src", "dst") in `work` writes the guest's
/// console.
pub fn serial_log_path(work: &Path, role: &str) -> PathBuf {
    work.join(format!("{role}-serial.log"))
}

impl QemuProcess {
    /// Start one side: `incoming` is the destination's listen address;
    /// `netns` the network namespace to run in, if any.
    pub fn start(
        spec: &GuestSpec,
        work: &Path,
        role: &str,
        incoming: Option<&str>,
        netns: Option<&str>,
    ) -> Result<Self> {
        let qmp_path = work.join(format!("{role}.qmp"));
        let serial_log = serial_log_path(work, role);
        let qemu_log = work.join(format!("{role}-qemu.log"));
        let mut cmd = match netns {
            Some(ns) => {
                // `ip netns exec` execs QEMU in place: the child is QEMU.
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&spec.qemu);
                c
            }
            None => Command::new(&spec.qemu),
        };
        cmd.args([
            "-accel",
            &spec.accel,
            "-m",
            &spec.ram_mib.to_string(),
            "-smp",
            "1",
        ])
        .args(["-nographic", "-nodefaults", "-name", role])
        .arg("-kernel")
        .arg(&spec.kernel)
        .arg("-initrd")
        .arg(&spec.initrd)
        .args([
            "-append",
            &format!("console=ttyS0 quiet kairos.workload={}", spec.workload),
        ])
        .arg("-serial")
        .arg(format!("file:{}", serial_log.display()))
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", qmp_path.display()));
        for dir in &spec.data_dirs {
            cmd.arg("-L").arg(dir);
        }
        if let Some(file) = &spec.workload_file {
            cmd.arg("-fw_cfg").arg(format!(
                "name=opt/kairos/workload.toml,file={}",
                file.display()
            ));
        }
        if let Some(uri) = incoming {
            cmd.args(["-incoming", uri]);
        }
        let log = std::fs::File::create(&qemu_log)
            .with_context(|| format!("creating {}", qemu_log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", spec.qemu.display()))?;
        Ok(Self {
            child,
            qmp_path,
            serial_log,
            qemu_log,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kill the process now (SIGKILL) and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// CPU time (user + system) the process used so far, seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // Fields after the ")" of the command name: utime is the 12th, stime the 13th.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        Some(ticks / hz.max(1.0))
    }
}

impl QemuProcess {
    /// Wait until the guest's console shows its load running; an error
    /// naming the log to read if QEMU exits or `timeout` passes first.
    pub fn wait_for_load(&mut self, timeout: std::time::Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        while !super::guest_log::load_running(&self.serial_log) {
            if !self.is_running() {
                anyhow::bail!("QEMU exited; see {}", self.qemu_log.display());
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!(
                    "the guest did not start its load within {timeout:?}; see {}",
                    self.serial_log.display()
                );
            }
            super::interrupt::sleep(std::time::Duration::from_millis(200))?;
        }
        Ok(())
    }

    /// Resident memory of the process, bytes.
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}

impl Drop for QemuProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
