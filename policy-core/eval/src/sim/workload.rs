//! Workload programs: TOML files of phases the guest runs, shared by the
//! simulator and the real guest's load generator.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

/// Guest memory the workload never writes (kernel, page cache), MiB. Write
/// phases' working sets start right after it.
pub const RESERVED_MIB: u64 = 64;
/// Largest guest the simulator accepts, MiB.
pub const MAX_RAM_MIB: u64 = 1 << 20;

/// What a phase does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhaseKind {
    /// Nothing: the guest sleeps.
    Idle,
    /// Busy CPU, no memory writes.
    Cpu,
    /// Writes pages of a working set at a rate.
    Write,
}

/// Where the writes of a write phase land.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pattern {
    /// Every page of the working set equally likely.
    #[default]
    Uniform,
    /// Zipf-distributed page ranks (hot pages).
    Zipf,
    /// Pages in order, wrapping around.
    Sequential,
    /// Two tiers: `hot_share` of the writes land uniformly on the first
    /// `hot_fraction` of the working set, the rest uniformly on the others.
    #[serde(rename = "hot-cold")]
    HotCold,
}

fn default_zipf_theta() -> f64 {
    0.99
}

fn default_cpu_share() -> f64 {
    1.0
}

fn default_hot_fraction() -> f64 {
    0.1
}

fn default_hot_share() -> f64 {
    0.9
}

fn default_write_kib() -> u64 {
    4
}

/// The largest span one write may touch, KiB (a 1 GiB huge page).
pub const MAX_WRITE_KIB: u64 = 1 << 20;

/// One phase of a workload program.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// What the phase does.
    pub kind: PhaseKind,
    /// How long it lasts, seconds.
    pub seconds: f64,
    /// Working set the writes land in, MiB (write phases only).
    #[serde(default)]
    pub wss_mib: f64,
    /// Page-touch rate × page size, MiB/s (write phases only).
    #[serde(default)]
    pub rate_mib_s: f64,
    /// Access pattern (write phases only).
    #[serde(default)]
    pub pattern: Pattern,
    /// Zipf exponent (zipf pattern only).
    #[serde(default = "default_zipf_theta")]
    pub zipf_theta: f64,
    /// Share of a vCPU the phase's writes need at its rate (write phases;
    /// simulator only). A CPU throttle leaves the guest `1 − p` of its CPU,
    /// so the phase runs at min(1, (1 − p) / cpu_share) of its pace: 1 (the
    /// default) is a writer bound by its CPU, cut in proportion; a small
    /// share is a writer that needs little CPU per page and keeps its pace
    /// under any throttle short of starving it.
    #[serde(default = "default_cpu_share")]
    pub cpu_share: f64,
    /// The working set at the phase's end, MiB: it grows or shrinks
    /// linearly from `wss_mib` over the phase (write phases; unset: fixed).
    #[serde(default)]
    pub wss_end_mib: Option<f64>,
    /// Share of the working set that is hot (hot-cold pattern only).
    #[serde(default = "default_hot_fraction")]
    pub hot_fraction: f64,
    /// Share of the writes that land on the hot pages (hot-cold only).
    #[serde(default = "default_hot_share")]
    pub hot_share: f64,
    /// What one write touches, KiB: a power of two from 4 (one page, the
    /// default) up, the pages of the span of that size (aligned to it)
    /// that holds the page the pattern chose (16: a database page; 2048:
    /// a huge page cleared or copied whole). `rate_mib_s` counts the
    /// bytes touched, so a larger span is fewer writes (write phases).
    #[serde(default = "default_write_kib")]
    pub write_kib: u64,
}

impl Phase {
    /// The largest working set of the phase, MiB.
    pub fn max_wss_mib(&self) -> f64 {
        self.wss_end_mib
            .map_or(self.wss_mib, |end| end.max(self.wss_mib))
    }
}

/// A workload program.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Short name used in tables.
    pub name: String,
    /// What it models, for the catalogue.
    #[serde(default)]
    pub description: String,
    /// Guest RAM, MiB.
    pub ram_mib: u64,
    /// Loop the phases until stopped; otherwise idle after the last one.
    #[serde(default)]
    pub repeat: bool,
    /// Seconds into the program at which the migration starts, unless the
    /// command says otherwise (`--warmup-s`): a migration that begins
    /// mid-program, as migrations of long-running guests do. Unset: at 0 s
    /// in simulation, after the live test-bed's default warm-up live.
    #[serde(default)]
    pub migrate_at_s: Option<f64>,
    /// The phases, in order.
    #[serde(rename = "phase")]
    pub phases: Vec<Phase>,
    /// Competing traffic on the link (simulation only; unset: the link is
    /// the migration's).
    #[serde(default)]
    pub link: Option<LinkProfile>,
}

/// The share of the link the migration gets over the program's time: a
/// square wave of competing traffic (simulation only — the live test-bed
/// refuses a program that has one rather than ignore it).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkProfile {
    /// Period of the competing traffic, s.
    pub period_s: f64,
    /// Seconds at the start of each period the link is shared.
    pub shared_s: f64,
    /// The migration's share of the link while it is shared, in (0, 1].
    pub shared_fraction: f64,
}

impl LinkProfile {
    /// The migration's share of the link `t_s` seconds into the program.
    pub fn share_at(&self, t_s: f64) -> f64 {
        if t_s.rem_euclid(self.period_s) < self.shared_s {
            self.shared_fraction
        } else {
            1.0
        }
    }
}

/// A workload file that could not be used, naming the file and the field.
#[derive(Debug, Error)]
pub enum WorkloadError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Not valid TOML or not the workload schema.
    #[error("{path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// The TOML parser's message (it names line, column and field).
        message: String,
    },
    /// A field has an impossible value.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// File.
        path: PathBuf,
        /// Field, e.g. `phase[2].wss_mib`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl Workload {
    /// Read and validate a workload file.
    pub fn from_file(path: &Path) -> Result<Self, WorkloadError> {
        let text = std::fs::read_to_string(path).map_err(|source| WorkloadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Parse and validate workload TOML; `path` names it in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, WorkloadError> {
        let workload: Workload = toml::from_str(text).map_err(|e| WorkloadError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        workload.validate(path)?;
        Ok(workload)
    }

    fn validate(&self, path: &Path) -> Result<(), WorkloadError> {
        let invalid = |field: String, message: String| WorkloadError::Invalid {
            path: path.to_path_buf(),
            field,
            message,
        };
        if self.name.trim().is_empty() {
            return Err(invalid("name".into(), "must not be empty".into()));
        }
        if !(RESERVED_MIB * 2..=MAX_RAM_MIB).contains(&self.ram_mib) {
            return Err(invalid(
                "ram_mib".into(),
                format!(
                    "{} is outside [{}, {}]",
                    self.ram_mib,
                    RESERVED_MIB * 2,
                    MAX_RAM_MIB
                ),
            ));
        }
        if let Some(at_s) = self.migrate_at_s.filter(|t| !(t.is_finite() && *t >= 0.0)) {
            return Err(invalid(
                "migrate_at_s".into(),
                format!("{at_s} must be >= 0"),
            ));
        }
        if self.phases.is_empty() {
            return Err(invalid(
                "phase".into(),
                "at least one [[phase]] is needed".into(),
            ));
        }
        if let Some(l) = &self.link {
            let bad = |name: &str, message: String| Err(invalid(format!("link.{name}"), message));
            if !(l.period_s.is_finite() && l.period_s > 0.0) {
                return bad("period_s", format!("{} must be > 0", l.period_s));
            }
            if !(l.shared_s.is_finite() && l.shared_s >= 0.0 && l.shared_s <= l.period_s) {
                return bad(
                    "shared_s",
                    format!("{} must be in [0, period_s]", l.shared_s),
                );
            }
            if !(l.shared_fraction.is_finite()
                && l.shared_fraction > 0.0
                && l.shared_fraction <= 1.0)
            {
                return bad(
                    "shared_fraction",
                    format!("{} must be in (0, 1]", l.shared_fraction),
                );
            }
        }
        let writable_mib = (self.ram_mib - RESERVED_MIB) as f64;
        for (i, p) in self.phases.iter().enumerate() {
            let field = |name: &str| format!("phase[{}].{name}", i + 1);
            if !(p.seconds.is_finite() && p.seconds > 0.0) {
                return Err(invalid(
                    field("seconds"),
                    format!("{} must be > 0", p.seconds),
                ));
            }
            match p.kind {
                PhaseKind::Write => {
                    for (name, mib) in
                        [("wss_mib", Some(p.wss_mib)), ("wss_end_mib", p.wss_end_mib)]
                    {
                        let Some(mib) = mib else { continue };
                        if !(mib.is_finite() && mib > 0.0 && mib <= writable_mib) {
                            return Err(invalid(
                                field(name),
                                format!("{mib} must be in (0, {writable_mib}] (RAM minus {RESERVED_MIB} MiB reserved)"),
                            ));
                        }
                    }
                    if p.pattern == Pattern::HotCold {
                        for (name, share) in
                            [("hot_fraction", p.hot_fraction), ("hot_share", p.hot_share)]
                        {
                            if !(share.is_finite() && share > 0.0 && share < 1.0) {
                                return Err(invalid(
                                    field(name),
                                    format!("{share} must be in (0, 1)"),
                                ));
                            }
                        }
                    }
                    if !(p.rate_mib_s.is_finite() && p.rate_mib_s > 0.0 && p.rate_mib_s <= 1e6) {
                        return Err(invalid(
                            field("rate_mib_s"),
                            format!("{} must be in (0, 1e6]", p.rate_mib_s),
                        ));
                    }
                    if !(p.cpu_share.is_finite() && p.cpu_share > 0.0 && p.cpu_share <= 1.0) {
                        return Err(invalid(
                            field("cpu_share"),
                            format!("{} must be in (0, 1]", p.cpu_share),
                        ));
                    }
                    if !(p.write_kib.is_power_of_two()
                        && (4..=MAX_WRITE_KIB).contains(&p.write_kib))
                    {
                        return Err(invalid(
                            field("write_kib"),
                            format!(
                                "{} must be a power of two in [4, {MAX_WRITE_KIB}]",
                                p.write_kib
                            ),
                        ));
                    }
                    if p.pattern == Pattern::Zipf
                        && !(p.zipf_theta.is_finite() && p.zipf_theta > 0.0 && p.zipf_theta <= 5.0)
                    {
                        return Err(invalid(
                            field("zipf_theta"),
                            format!("{} must be in (0, 5]", p.zipf_theta),
                        ));
                    }
                }
                PhaseKind::Idle | PhaseKind::Cpu => {
                    if p.wss_mib != 0.0
                        || p.rate_mib_s != 0.0
                        || p.wss_end_mib.is_some()
                        || p.write_kib != default_write_kib()
                    {
                        return Err(invalid(
                            field("kind"),
                            "wss_mib, wss_end_mib, rate_mib_s and write_kib only apply to write phases"
                                .into(),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Largest working set of any write phase, MiB.
    pub fn max_wss_mib(&self) -> f64 {
        self.phases
            .iter()
            .map(Phase::max_wss_mib)
            .fold(0.0, f64::max)
    }

    /// Length of one pass over the phases, seconds.
    pub fn cycle_seconds(&self) -> f64 {
        self.phases.iter().map(|p| p.seconds).sum()
    }
}

/// Every `*.toml` in `dir`, sorted by file name.
pub fn suite_files(dir: &Path) -> Result<Vec<PathBuf>, WorkloadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| WorkloadError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(WorkloadError::Invalid {
            path: dir.to_path_buf(),
            field: "suite".into(),
            message: "no *.toml workload files in this directory".into(),
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
name = "idle-then-burst"
ram_mib = 1024
repeat = true
[[phase]]
kind = "idle"
seconds = 20
[[phase]]
kind = "write"
seconds = 20
wss_mib = 200
rate_mib_s = 120
pattern = "zipf"
zipf_theta = 0.99
"#;

    #[test]
    fn parses_the_documented_example() {
        let w = Workload::from_toml(EXAMPLE, Path::new("x.toml")).unwrap();
        assert_eq!(w.phases.len(), 2);
        assert_eq!(w.phases[1].pattern, Pattern::Zipf);
        assert!(w.repeat);
    }

    #[test]
    fn names_the_bad_field() {
        let bad = EXAMPLE.replace("wss_mib = 200", "wss_mib = 5000");
        let err = Workload::from_toml(&bad, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x.toml") && err.contains("phase[2].wss_mib"),
            "{err}"
        );
    }

    #[test]
    fn rejects_unknown_fields_and_kinds() {
        let unknown = EXAMPLE.replace("repeat = true", "repeat = true\ncolour = 3");
        let err = Workload::from_toml(&unknown, Path::new("u.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
        let kind = EXAMPLE.replace("\"idle\"", "\"sleep\"");
        assert!(Workload::from_toml(&kind, Path::new("k.toml")).is_err());
    }

    #[test]
    fn hot_cold_tiers_and_a_growing_set_are_checked() {
        let hot = EXAMPLE.replace(
            "pattern = \"zipf\"",
            "pattern = \"hot-cold\"\nhot_fraction = 0.2\nhot_share = 0.8\nwss_end_mib = 600",
        );
        let w = Workload::from_toml(&hot, Path::new("h.toml")).unwrap();
        assert_eq!(w.phases[1].pattern, Pattern::HotCold);
        assert_eq!(w.max_wss_mib(), 600.0);
        for (from, to, field) in [
            ("hot_share = 0.8", "hot_share = 1.0", "phase[2].hot_share"),
            (
                "hot_fraction = 0.2",
                "hot_fraction = 0",
                "phase[2].hot_fraction",
            ),
            (
                "wss_end_mib = 600",
                "wss_end_mib = 5000",
                "phase[2].wss_end_mib",
            ),
        ] {
            let err = Workload::from_toml(&hot.replace(from, to), Path::new("h.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{err}");
        }
        let idle_grows = EXAMPLE.replace(
            "seconds = 20\n[[phase]]",
            "seconds = 20\nwss_end_mib = 5\n[[phase]]",
        );
        assert!(Workload::from_toml(&idle_grows, Path::new("i.toml")).is_err());
    }

    #[test]
    fn a_shared_link_is_a_square_wave() {
        let text = format!("{EXAMPLE}[link]\nperiod_s = 20\nshared_s = 5\nshared_fraction = 0.5\n");
        let w = Workload::from_toml(&text, Path::new("l.toml")).unwrap();
        let link = w.link.unwrap();
        assert_eq!(link.share_at(1.0), 0.5);
        assert_eq!(link.share_at(7.0), 1.0);
        assert_eq!(link.share_at(21.0), 0.5);
        let bad = text.replace("shared_fraction = 0.5", "shared_fraction = 0");
        let err = Workload::from_toml(&bad, Path::new("l.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("link.shared_fraction"), "{err}");
    }
}
