//! The options every live subcommand shares (the guest, the link, the
//! limits, the QEMU) and how a workload argument is resolved.

use crate::cmd::usage::{bail_usage, OrUsage};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use kairos_eval::sim::workload::Workload;

use crate::live::kvm::hide_dev_kvm;
use crate::live::qemu::GuestSpec;
use crate::live::run::RunConfig;
use crate::live::spec::LiveSpec;
use crate::live::start::{StartPolicy, StartRule};
use kairos_policy_core::{Escalation, PolicyConfig};

/// The accelerator guests run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    /// Software emulation; /dev/kvm is hidden so QEMU's probes fall back.
    Tcg,
    /// Hardware virtualization.
    Kvm,
}

impl Accel {
    /// The name `-accel` takes.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }
}

/// The link between source and destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Link {
    /// Two network namespaces joined by a veth pair shaped with tc to the
    /// bandwidth: the stop-and-copy is bounded by the link, as on a real
    /// network.
    Netns,
    /// Loopback: QEMU lifts its rate limit for the stop-and-copy, so
    /// downtimes look far smaller than on any real link.
    Loopback,
}

/// Options shared by `kairos run` and `kairos compare`.
#[derive(Debug, Args, Clone)]
pub struct LiveArgs {
    /// Link bandwidth (QEMU's max-bandwidth), Mbit/s.
    #[arg(long, default_value_t = 1000, value_name = "MBIT")]
    pub bandwidth_mbit: u64,
    /// QEMU's downtime-limit (L), ms.
    #[arg(long, default_value_t = 300, value_name = "MS")]
    pub downtime_limit_ms: u64,
    /// Hard maximum downtime (M), ms: x-convergence-max-downtime.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub max_downtime_ms: u64,
    /// Downtime weight λ for `predictive` and the costs: seconds of
    /// migration one second of downtime beyond the limit is worth.
    #[arg(long, default_value_t = kairos_policy_core::config::DEFAULT_DOWNTIME_WEIGHT, value_name = "λ")]
    pub downtime_weight: f64,
    /// What `predictive`'s escalation may do once nothing fits the
    /// maximum (x-convergence-escalation): throttle the guest by the share
    /// the forecast sizes, switch to post-copy (needs --policy's
    /// capability postcopy-ram, which the test-bed sets for `auto` and
    /// `postcopy`), whichever of the two costs the guest less, or cap the
    /// dirty rate (dirty-limit: needs KVM's dirty ring, so refused under
    /// TCG).
    #[arg(long, default_value = "none", value_parser = crate::cli_policy::names_parser(Escalation::ALL, Escalation::name))]
    pub escalation: Escalation,
    /// Guest RAM, MiB [default: the workload program's ram_mib, 1024 for
    /// a benchmark]. A program whose largest working set does not fit the
    /// guest is refused.
    #[arg(long, value_name = "MIB")]
    pub ram_mib: Option<u64>,
    /// Seconds the workload runs before the migration starts [default: the
    /// program's migrate_at_s, else 8].
    #[arg(long, value_name = "S")]
    pub warmup_s: Option<f64>,
    /// Cancel a migration still running after this long, seconds.
    #[arg(long, default_value_t = 120.0, value_name = "S")]
    pub timeout_s: f64,
    /// Use the unpatched QEMU (build/bin-vanilla); only qemu, qemu@MS,
    /// auto-converge and postcopy-after then work.
    #[arg(long)]
    pub vanilla_qemu: bool,
    /// The link between the two QEMUs.
    #[arg(long, value_enum, default_value_t = Link::Netns)]
    pub link: Link,
    /// One-way delay of the netns link, ms (needs tc netem).
    #[arg(long, default_value_t = 0.0, value_name = "MS")]
    pub delay_ms: f64,
    /// Accelerator.
    #[arg(long, value_enum, default_value_t = Accel::Tcg)]
    pub accel: Accel,
    /// Where the QEMU binaries, guest and logs are (the repository root).
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// When to start after the warm-up (and --start-delay-s): at once,
    /// where `kairos advise` says after profiling the guest for
    /// --profile-s (re-advising every 5 s while it waits), or where the
    /// ALMA-style rule says (the next low phase of the cycle in the
    /// spectrum of the same profile).
    #[arg(long, value_enum, default_value_t = StartRule::Now)]
    pub start: StartRule,
    /// Seconds to wait after the warm-up before the start rule applies.
    #[arg(long, default_value_t = 0.0, value_name = "S")]
    pub start_delay_s: f64,
    /// With --start advised or alma: seconds of profile before deciding.
    #[arg(long, default_value_t = 240.0, value_name = "S")]
    pub profile_s: f64,
    /// With --start advised or alma: the longest wait accepted, s.
    #[arg(long, default_value_t = 300.0, value_name = "S")]
    pub max_wait_s: f64,
    /// With --start advised: ω, seconds of migration one second of waiting
    /// is worth (see `kairos advise --help`); also what the wait of every
    /// start rule is weighed by in the run's record.
    #[arg(long, default_value_t = kairos_eval::advise::DEFAULT_WAIT_WEIGHT, value_name = "ω")]
    pub wait_weight: f64,
}

impl LiveArgs {
    /// Check the flags and prepare the process (signals; hide /dev/kvm for
    /// TCG).
    pub fn prepare(&self) -> Result<()> {
        if self.bandwidth_mbit == 0 {
            bail_usage!("--bandwidth-mbit must be > 0");
        }
        if self.ram_mib.is_some_and(|mib| mib < MIN_GUEST_RAM_MIB) {
            bail_usage!("--ram-mib must be at least {MIN_GUEST_RAM_MIB}");
        }
        if self.warmup_s.is_some_and(|w| !(w.is_finite() && w >= 0.0)) {
            bail_usage!("--warmup-s must be >= 0");
        }
        if !(self.timeout_s.is_finite() && self.timeout_s > 0.0) {
            bail_usage!("--timeout-s must be > 0");
        }
        if !(self.delay_ms.is_finite() && self.delay_ms >= 0.0) {
            bail_usage!("--delay-ms must be >= 0");
        }
        for (name, v) in [
            ("--profile-s", self.profile_s),
            ("--max-wait-s", self.max_wait_s),
            ("--start-delay-s", self.start_delay_s),
            ("--wait-weight", self.wait_weight),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                bail_usage!("{name} must be >= 0");
            }
        }
        if self.escalation == Escalation::DirtyLimit && self.accel == Accel::Tcg {
            // QEMU would leave it out with a warning and the run would
            // measure no escalation at all.
            bail_usage!(
                "--escalation dirty-limit needs KVM's dirty ring, which TCG guests do not have"
            );
        }
        self.policy_config()?;
        crate::live::interrupt::install()?;
        match self.accel {
            Accel::Tcg => hide_dev_kvm(),
            Accel::Kvm => Ok(()),
        }
    }

    /// The objective and configuration the flags state (checked).
    pub fn policy_config(&self) -> Result<PolicyConfig> {
        let cfg = PolicyConfig {
            downtime_limit_ms: self.downtime_limit_ms as f64,
            max_downtime_ms: self.max_downtime_ms as f64,
            downtime_weight: self.downtime_weight,
            escalation: self.escalation,
            ..PolicyConfig::default()
        };
        cfg.validate()
            .context("--downtime-limit-ms, --max-downtime-ms, --downtime-weight")
            .or_usage()?;
        Ok(cfg)
    }

    /// The guest spec for a workload.
    pub fn guest(&self, workload: &WorkloadRef) -> Result<GuestSpec> {
        let bin = if self.vanilla_qemu {
            "build/bin-vanilla"
        } else {
            "build/bin"
        };
        let qemu = self.root.join(bin).join("qemu-system-x86_64");
        let kernel = self.root.join("build/guest/vmlinuz");
        let initrd = self.root.join("build/guest/initrd.img");
        for (path, how) in [
            (
                &qemu,
                if self.vanilla_qemu {
                    "scripts/build-qemu.sh --vanilla"
                } else {
                    "scripts/build-qemu.sh"
                },
            ),
            (&kernel, "scripts/build-guest.sh"),
            (&initrd, "scripts/build-guest.sh"),
        ] {
            if !path.exists() {
                bail!("{} is missing: run {how}", path.display());
            }
        }
        let real = std::fs::canonicalize(&qemu)?;
        let data = real
            .parent()
            .map(|d| d.join("qemu-bundle/usr/local/share/qemu"));
        Ok(GuestSpec {
            qemu,
            data_dirs: data.into_iter().filter(|d| d.exists()).collect(),
            kernel,
            initrd,
            workload: workload.name.clone(),
            workload_file: workload.file.clone(),
            ram_mib: self.guest_ram_mib(workload)?,
            accel: self.accel.name().to_string(),
        })
    }

    /// The guest's RAM for `workload`: `--ram-mib` if given, else the
    /// program's own `ram_mib` (the size the simulator runs it at), else
    /// [`BENCHMARK_RAM_MIB`]; an error when the program's largest working
    /// set and the guest's reserve do not fit it.
    pub fn guest_ram_mib(&self, workload: &WorkloadRef) -> Result<u64> {
        let ram_mib = self
            .ram_mib
            .or(workload.program_ram_mib)
            .unwrap_or(BENCHMARK_RAM_MIB);
        if let Some(wss_mib) = workload.program_max_wss_mib {
            let needs_mib = wss_mib + kairos_eval::sim::workload::RESERVED_MIB as f64;
            if needs_mib > ram_mib as f64 {
                bail_usage!(
                    "workload '{workload}' writes a working set of up to {wss_mib} MiB, which with the \
                     guest's {} MiB reserve does not fit a {ram_mib} MiB guest (--ram-mib; the \
                     program says ram_mib = {})",
                    kairos_eval::sim::workload::RESERVED_MIB,
                    workload.program_ram_mib.unwrap_or(0)
                );
            }
        }
        Ok(ram_mib)
    }

    /// Seconds `workload` runs before its migration starts: `--warmup-s`,
    /// else the program's `migrate_at_s`, else [`DEFAULT_WARMUP_S`].
    pub fn warmup_s(&self, workload: &WorkloadRef) -> f64 {
        self.warmup_s
            .or(workload.program_migrate_at_s)
            .unwrap_or(DEFAULT_WARMUP_S)
    }

    /// The run configuration of one migration.
    pub fn config(
        &self,
        workload: &WorkloadRef,
        policy: LiveSpec,
        work_dir: PathBuf,
    ) -> Result<RunConfig> {
        if self.vanilla_qemu && policy.needs_patched_qemu() {
            bail_usage!("policy '{policy}' needs the patched QEMU (drop --vanilla-qemu)");
        }
        Ok(RunConfig {
            spec: self.guest(workload)?,
            policy,
            bandwidth_bytes_per_s: self.bandwidth_mbit * 1_000_000 / 8,
            downtime_limit_ms: self.downtime_limit_ms,
            max_downtime_ms: self.max_downtime_ms,
            downtime_weight: self.downtime_weight,
            escalation: self.escalation,
            warmup_s: self.warmup_s(workload),
            timeout_s: self.timeout_s,
            work_dir,
            patched_qemu: !self.vanilla_qemu,
            netns_delay_ms: (self.link == Link::Netns).then_some(self.delay_ms),
            label: format!("{workload} / {policy}"),
            start_delay_s: self.start_delay_s,
            start: match self.start {
                StartRule::Now => StartPolicy::Now,
                StartRule::Advised => StartPolicy::Advised {
                    profile_s: self.profile_s,
                    max_wait_s: self.max_wait_s,
                },
                StartRule::Alma => StartPolicy::Alma {
                    profile_s: self.profile_s,
                    max_wait_s: self.max_wait_s,
                },
            },
            wait_weight: self.wait_weight,
        })
    }
}

/// Parse a live policy name when the command line is read (a bad one is
/// a usage error naming the known ones).
pub fn live_spec(text: &str) -> std::result::Result<LiveSpec, String> {
    text.parse::<LiveSpec>().map_err(|e| {
        format!(
            "{e}\n  live policies: {}, qemu@MS, predictive@w=N",
            LiveSpec::NAMES.join(", ")
        )
    })
}

/// Benchmarks the guest runs besides the workload programs: memcached with
/// the YCSB-style client kairos-kv (workloads A and B), sysbench memory,
/// redis-server with redis-benchmark, fio (scripts/build-guest.sh).
pub const BENCHMARKS: [&str; 5] = ["ycsb-a", "ycsb-b", "sysbench-memory", "redis", "fio"];

/// A workload as the guest runs it: its name (the key in every result)
/// and, for a workload program, the file handed to the guest.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadRef {
    /// Name (a benchmark's, or the program file's stem).
    pub name: String,
    /// The workload program, None for a benchmark.
    pub file: Option<PathBuf>,
    /// The program's `ram_mib`, None for a benchmark.
    pub program_ram_mib: Option<u64>,
    /// The program's largest working set, MiB; None for a benchmark.
    pub program_max_wss_mib: Option<f64>,
    /// When the program says its migration starts, s; None for a
    /// benchmark or a program that does not say.
    pub program_migrate_at_s: Option<f64>,
}

/// Seconds a workload runs before its migration when neither the command
/// nor the program says: enough for the load generator's rate before the
/// migration, the baseline of its app loss.
pub const DEFAULT_WARMUP_S: f64 = 8.0;

/// Guest RAM of a benchmark (which has no program to say), MiB.
pub const BENCHMARK_RAM_MIB: u64 = 1024;
/// Smallest guest the test-bed boots, MiB.
pub const MIN_GUEST_RAM_MIB: u64 = 256;

impl std::fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// The workload `arg` names: a benchmark, a catalogue name
/// (`testbed/workloads/NAME.toml`) or any workload program file, which the
/// guest is handed at run time (through QEMU's fw_cfg), so it needs no
/// rebuilt image. The file is parsed here: a bad one is reported by name.
pub fn workload_name(arg: &str, root: &Path) -> Result<WorkloadRef> {
    if BENCHMARKS.contains(&arg) {
        return Ok(WorkloadRef {
            name: arg.to_string(),
            file: None,
            program_ram_mib: None,
            program_max_wss_mib: None,
            program_migrate_at_s: None,
        });
    }
    let path = if arg.ends_with(".toml") {
        PathBuf::from(arg)
    } else {
        root.join("testbed/workloads").join(format!("{arg}.toml"))
    };
    if !path.exists() {
        bail_usage!(
            "unknown workload '{arg}': no {} and not a benchmark ({})",
            path.display(),
            BENCHMARKS.join(", ")
        );
    }
    let program = Workload::from_file(&path)?;
    if program.link.is_some() {
        bail_usage!(
            "{}: its [link] (competing traffic) is modelled by the simulator only; the live \
             test-bed's link is shaped to --bandwidth-mbit and cannot follow it",
            path.display()
        );
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty() && !s.contains([',', '=', ' ']))
        .with_context(|| {
            format!(
                "{}: the file name (without .toml) names the workload and must not be empty or hold ',', '=' or spaces",
                path.display()
            )
        })?;
    Ok(WorkloadRef {
        file: Some(std::fs::canonicalize(&path)?),
        name,
        program_ram_mib: Some(program.ram_mib),
        program_max_wss_mib: Some(program.max_wss_mib()),
        program_migrate_at_s: program.migrate_at_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_with_competing_traffic_is_refused_live() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shared.toml");
        std::fs::write(
            &file,
            "name = 'shared'\nram_mib = 1024\n[[phase]]\nkind = 'write'\nseconds = 5\nwss_mib = 64\nrate_mib_s = 50\n[link]\nperiod_s = 10\nshared_s = 5\nshared_fraction = 0.5\n",
        )
        .unwrap();
        let err = workload_name(&file.display().to_string(), dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("simulator only"), "{err:#}");
    }

    #[test]
    fn a_program_from_anywhere_is_handed_to_the_guest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mine.toml");
        std::fs::write(
            &file,
            "name = 'mine'\nram_mib = 1024\n[[phase]]\nkind = 'write'\nseconds = 5\nwss_mib = 64\nrate_mib_s = 50\n",
        )
        .unwrap();
        let w = workload_name(file.to_str().unwrap(), Path::new(".")).unwrap();
        assert_eq!(w.name, "mine");
        assert_eq!(w.file, Some(std::fs::canonicalize(&file).unwrap()));
        let bench = workload_name("redis", Path::new(".")).unwrap();
        assert_eq!(bench.file, None);
        let bad = dir.path().join("a,b.toml");
        std::fs::copy(&file, &bad).unwrap();
        let err = workload_name(bad.to_str().unwrap(), Path::new(".")).unwrap_err();
        assert!(format!("{err:#}").contains("must not"), "{err:#}");
    }

    /// The live options as `kairos run` parses them from `args`.
    fn live_args(args: &[&str]) -> LiveArgs {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            live: LiveArgs,
        }
        <Cli as clap::Parser>::try_parse_from(std::iter::once("kairos").chain(args.iter().copied()))
            .unwrap()
            .live
    }

    #[test]
    fn the_guest_is_as_large_as_the_program_says_unless_told() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big.toml");
        std::fs::write(
            &file,
            "name = 'big'\nram_mib = 2048\n[[phase]]\nkind = 'write'\nseconds = 5\nwss_mib = 1500\nrate_mib_s = 50\n",
        )
        .unwrap();
        let program = workload_name(file.to_str().unwrap(), Path::new(".")).unwrap();
        let bench = workload_name("redis", Path::new(".")).unwrap();
        // The program's own size, as the simulator runs it.
        assert_eq!(live_args(&[]).guest_ram_mib(&program).unwrap(), 2048);
        // A benchmark has no program: the default.
        assert_eq!(
            live_args(&[]).guest_ram_mib(&bench).unwrap(),
            BENCHMARK_RAM_MIB
        );
        // --ram-mib wins when the program fits it...
        assert_eq!(
            live_args(&["--ram-mib", "4096"])
                .guest_ram_mib(&program)
                .unwrap(),
            4096
        );
        assert_eq!(
            live_args(&["--ram-mib", "512"])
                .guest_ram_mib(&bench)
                .unwrap(),
            512
        );
        // ...and a program that cannot fit the guest is an error, not a
        // silently smaller working set.
        let err = live_args(&["--ram-mib", "1024"])
            .guest_ram_mib(&program)
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("does not fit a 1024 MiB guest"),
            "{err:#}"
        );
        // Too small a guest is a usage error.
        assert!(live_args(&["--ram-mib", "128"]).prepare().is_err());
    }
}
