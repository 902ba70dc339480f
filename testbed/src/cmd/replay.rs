//! `kairos replay`: feed recorded per-round traces to policies.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use kairos_eval::summary::replay_trace;
use kairos_eval::trace::read_trace_file;

use crate::cli_policy::PolicyArgs;
use crate::table;

/// Arguments of `kairos replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A trace file (CSV), or a directory of them (every *.csv).
    #[arg(long)]
    pub trace: PathBuf,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Print every round of every replay (what the policy saw, said and
    /// forecast, and the costs it weighed) to standard error.
    #[arg(long)]
    pub explain: bool,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn trace_files(path: &PathBuf) -> Result<Vec<PathBuf>> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("{}: no *.csv trace files in this directory", path.display());
        }
        Ok(files)
    } else {
        Ok(vec![path.clone()])
    }
}

/// Run `kairos replay`.
pub fn run(args: &ReplayArgs) -> Result<()> {
    let specs = args.policy.specs()?;
    let cfg = args.policy.config()?;
    let mut report = table::Report::new(args.json);
    for file in trace_files(&args.trace)? {
        let rows = read_trace_file(&file)?;
        let name = file.file_stem().map_or_else(
            || file.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        if args.explain {
            for &spec in &specs {
                let mut policy = spec.build(&cfg)?;
                let decisions: Vec<_> = rows
                    .iter()
                    .map(|r| policy.observe(&r.observation))
                    .collect();
                table::print_explain(
                    &format!("{name} / {spec}"),
                    rows.iter().map(|r| &r.observation).zip(decisions.iter()),
                );
            }
        }
        report.add(replay_trace(&name, &rows, &specs, &cfg)?)?;
    }
    report.finish();
    Ok(())
}
