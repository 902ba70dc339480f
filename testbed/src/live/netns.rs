//! A shaped link between two network namespaces: the source and the
//! destination QEMU each run in their own namespace, joined by a veth pair
//! whose both ends are shaped with `tc` (a token bucket for the rate, or
//! netem when a delay is asked for and the kernel has it). Unlike
//! loopback, the stop-and-copy phase (where QEMU lifts its own rate limit)
//! is then bounded by the link, so downtimes mean what they would on a real
//! network. Everything is removed when the value is dropped.

use std::process::Command;

use anyhow::{bail, Context, Result};

/// Source-side address inside the source namespace.
pub const SRC_ADDR: &str = "10.213.0.1";
/// Destination-side address inside the destination namespace.
pub const DST_ADDR: &str = "10.213.0.2";

/// Run an iproute2 tool (`ip` or `tc`), its stderr in the error.
fn iproute2(tool: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .with_context(|| format!("running {tool} (iproute2)"))?;
    if !out.status.success() {
        bail!(
            "{tool} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn ip(args: &[&str]) -> Result<()> {
    iproute2("ip", args)
}

fn tc(args: &[&str]) -> Result<()> {
    iproute2("tc", args)
}

/// Two namespaces and the shaped veth pair between them.
pub struct NetnsLink {
    /// Source namespace name.
    pub src_ns: String,
    /// Destination namespace name.
    pub dst_ns: String,
    /// The veth end in the source namespace.
    pub src_if: String,
    /// The veth end in the destination namespace.
    pub dst_if: String,
}

impl NetnsLink {
    /// Create the namespaces and the link, shaped to `rate_mbit` and
    /// `delay_ms` each way.
    pub fn create(rate_mbit: u64, delay_ms: f64) -> Result<Self> {
        let id = std::process::id();
        let link = Self {
            src_ns: format!("kairos-src-{id}"),
            dst_ns: format!("kairos-dst-{id}"),
            src_if: format!("ks{id}"),
            dst_if: format!("kd{id}"),
        };
        let (src_if, dst_if) = (link.src_if.clone(), link.dst_if.clone());
        // On any error below, dropping `link` removes what exists.
        ip(&["netns", "add", &link.src_ns])?;
        ip(&["netns", "add", &link.dst_ns])?;
        ip(&[
            "link", "add", &src_if, "type", "veth", "peer", "name", &dst_if,
        ])?;
        ip(&["link", "set", &src_if, "netns", &link.src_ns])?;
        ip(&["link", "set", &dst_if, "netns", &link.dst_ns])?;
        let rate = format!("{rate_mbit}mbit");
        // A token bucket needs a burst of at least one timer tick of data.
        let burst = format!("{}", (rate_mbit * 1_000_000 / 8 / 100).max(64 * 1024));
        let delay = format!("{delay_ms}ms");
        for (ns, dev, addr) in [
            (&link.src_ns, &src_if, SRC_ADDR),
            (&link.dst_ns, &dst_if, DST_ADDR),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/30"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            if delay_ms > 0.0 {
                tc(&["-n", ns, "qdisc", "add", "dev", dev, "root", "netem", "rate", &rate, "delay", &delay])
                    .context("a delay needs tc's netem (kernel module sch_netem); use --delay-ms 0 without it")?;
            } else {
                tc(&[
                    "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", &rate, "burst",
                    &burst, "latency", "50ms",
                ])?;
            }
        }
        Ok(link)
    }
}

impl NetnsLink {
    /// Take the link down (`up` false) or bring it back, on the source
    /// side: what a pulled cable or a failed switch port does.
    pub fn set_up(&self, up: bool) -> Result<()> {
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.src_ns, "link", "set", &self.src_if, state])
    }
}

/// True when any of `names` is a network namespace (`ip netns list`).
pub fn namespaces_exist(names: &[&str]) -> bool {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return false;
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .any(|n| names.contains(&n))
}

impl Drop for NetnsLink {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and with it
        // the pair.
        let _ = ip(&["netns", "del", &self.src_ns]);
        let _ = ip(&["netns", "del", &self.dst_ns]);
    }
}
