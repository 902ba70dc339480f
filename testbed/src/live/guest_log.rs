//! The guest's console: `kairos-load` reports once a second.

use std::path::Path;

/// One report of the load generator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadSample {
    /// Seconds since the generator started (guest clock).
    pub t_s: f64,
    /// The workload phase it was in (1-based; benchmarks have one).
    pub phase: u32,
    /// It did nothing that second by design: an idle phase, or its
    /// program over (the generator then reports the last phase's number
    /// with the kind `idle`).
    pub idle: bool,
    /// Operations in that second.
    pub ops_per_s: f64,
    /// Longest stall of the generator's loop in that second, ms.
    pub max_gap_ms: f64,
    /// Pages found not holding what was written, so far (must stay 0).
    pub verify_errors: u64,
}

/// Parse every `kairos-load t=… ops_per_s=… max_gap_ms=…` line of a log.
pub fn load_samples(log: &Path) -> Vec<LoadSample> {
    let text = std::fs::read(log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<LoadSample> {
    let rest = &line[line.find("kairos-load t=")? + "kairos-load ".len()..];
    let mut t = None;
    let mut phase = 1;
    let mut idle = false;
    let mut ops = None;
    let mut gap = None;
    let mut verify_errors = 0;
    for field in rest.split_whitespace() {
        let (key, value) = field.split_once('=')?;
        match key {
            "t" => t = value.parse().ok(),
            "phase" => {
                let (number, kind) = value.split_once('/').unwrap_or((value, ""));
                phase = number.parse().ok()?;
                idle = kind == "idle";
            }
            "ops_per_s" => ops = value.parse().ok(),
            "max_gap_ms" => gap = value.parse().ok(),
            "verify_errors" => verify_errors = value.parse().ok()?,
            _ => {}
        }
    }
    Some(LoadSample {
        t_s: t?,
        phase,
        idle,
        ops_per_s: ops?,
        max_gap_ms: gap?,
        verify_errors,
    })
}

/// One `kairos-guest-stat` line: the guest's own view of itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuestStat {
    /// Share of the last second the guest's CPU was busy, %.
    pub cpu_busy_pct: f64,
    /// MemTotal − MemAvailable, MiB.
    pub mem_used_mib: f64,
}

/// Every `kairos-guest-stat cpu_busy_pct=… mem_used_mib=…` line of a log.
pub fn guest_stats(log: &Path) -> Vec<GuestStat> {
    let text = std::fs::read(log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    text.lines().filter_map(parse_stat_line).collect()
}

fn parse_stat_line(line: &str) -> Option<GuestStat> {
    let rest = &line[line.find("kairos-guest-stat ")? + "kairos-guest-stat ".len()..];
    let mut cpu = None;
    let mut mem = None;
    for field in rest.split_whitespace() {
        match field.split_once('=')? {
            ("cpu_busy_pct", v) => cpu = v.parse().ok(),
            ("mem_used_mib", v) => mem = v.parse().ok(),
            _ => {}
        }
    }
    Some(GuestStat {
        cpu_busy_pct: cpu?,
        mem_used_mib: mem?,
    })
}

/// The mean of the reports' operations per second; `None` for no report.
pub fn mean_ops_per_s(samples: &[LoadSample]) -> Option<f64> {
    (!samples.is_empty())
        .then(|| samples.iter().map(|s| s.ops_per_s).sum::<f64>() / samples.len() as f64)
}

/// True when the log shows the load generator running.
pub fn load_running(log: &Path) -> bool {
    !load_samples(log).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_report_and_skips_noise() {
        let s =
            parse_line("\u{1b}[2Jkairos-load t=12.0 phase=2/write ops_per_s=30720 max_gap_ms=3")
                .unwrap();
        assert_eq!(s.t_s, 12.0);
        assert_eq!(s.phase, 2);
        assert_eq!(s.ops_per_s, 30720.0);
        assert_eq!(s.max_gap_ms, 3.0);
        assert!(!s.idle);
        let over =
            parse_line("kairos-load t=30.0 phase=2/idle ops_per_s=0 max_gap_ms=101").unwrap();
        assert_eq!((over.phase, over.idle), (2, true));
        assert!(parse_line("kairos-guest: up").is_none());
    }

    #[test]
    fn parses_a_guest_stat_line() {
        let s = parse_stat_line("kairos-guest-stat cpu_busy_pct=97 mem_used_mib=499").unwrap();
        assert_eq!(s.cpu_busy_pct, 97.0);
        assert_eq!(s.mem_used_mib, 499.0);
        assert!(parse_stat_line("kairos-guest-stat cpu_busy_pct=x mem_used_mib=1").is_none());
        assert!(parse_stat_line("kairos-load t=1 ops_per_s=2 max_gap_ms=0").is_none());
    }
}
