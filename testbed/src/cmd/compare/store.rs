//! The result store of a comparison: one JSON file per finished cell run
//! (and per oracle) under `OUT/runs/`, written atomically, so a comparison
//! interrupted or failed part-way resumes where it stopped.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What a campaign's directory says about the code that made its runs
/// (`OUT/campaign.json`, written by the first run of the campaign).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    /// The commit of the code that made the runs (`-dirty` when tracked
    /// files differed from it).
    pub code_commit: String,
    /// When the campaign started, seconds since the Unix epoch.
    pub started_unix_s: u64,
}

/// Open the campaign in `out` for this binary's commit (see
/// [`open_campaign`]), say whose code it is, and open its run store.
pub fn open_announced(
    out: &Path,
    commit: &str,
    allow_mixed: bool,
    now_unix_s: u64,
) -> Result<Store> {
    let campaign = open_campaign(out, commit, allow_mixed, now_unix_s)?;
    eprintln!(
        "campaign {}: code {} (this binary: {commit})",
        out.display(),
        campaign.code_commit
    );
    Store::open(out)
}

/// Open the campaign of `out` for code `commit`: a new campaign is stamped
/// with it; an old one resumes only at the same commit (its runs would
/// otherwise mix two codes in one table) unless `allow_mixed` says so, and
/// each run then carries its own commit.
pub fn open_campaign(
    out: &Path,
    commit: &str,
    allow_mixed: bool,
    now_unix_s: u64,
) -> Result<Campaign> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let path = out.join("campaign.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let campaign: Campaign = serde_json::from_str(&text)
            .with_context(|| format!("{} does not read as a campaign", path.display()))?;
        if campaign.code_commit != commit && !allow_mixed {
            bail!(
                "{}: its runs were made by the code of commit {}, this binary is {commit}; \
                 resume it with that commit's binary (scripts/sweep.sh builds it), \
                 give another --out, or pass --allow-mixed-commits (each run records its commit)",
                out.display(),
                campaign.code_commit
            );
        }
        return Ok(campaign);
    }
    let campaign = Campaign {
        code_commit: commit.to_string(),
        started_unix_s: now_unix_s,
    };
    std::fs::write(&path, serde_json::to_string_pretty(&campaign)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(campaign)
}

/// The runs directory of a comparison.
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store under `out/runs`, created if needed.
    pub fn open(out: &Path) -> Result<Self> {
        Self::open_dir(&out.join("runs"))
    }

    /// The store in `dir` itself (a campaign's `OUT/runs`), created if
    /// needed.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Where the run called `name` keeps its logs.
    pub fn work_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// The stored value called `name`, if there is one that reads back.
    pub fn load<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        let text = std::fs::read_to_string(self.path(name)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Store `value` as `name`: written to a temporary file and renamed,
    /// so a crash leaves either the old value or the new one.
    pub fn save<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let path = self.path(name);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(value)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_campaign_resumes_only_at_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let first = open_campaign(dir.path(), "aaa", false, 5).unwrap();
        assert_eq!(first.code_commit, "aaa");
        assert_eq!(open_campaign(dir.path(), "aaa", false, 9).unwrap(), first);
        let err = open_campaign(dir.path(), "bbb", false, 9).unwrap_err();
        assert!(format!("{err:#}").contains("commit aaa"), "{err:#}");
        // Allowed, the campaign keeps its first stamp.
        assert_eq!(open_campaign(dir.path(), "bbb", true, 9).unwrap(), first);
    }

    #[test]
    fn saves_atomically_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.load::<Vec<u32>>("a"), None);
        store.save("a", &vec![1u32, 2]).unwrap();
        assert_eq!(store.load::<Vec<u32>>("a"), Some(vec![1, 2]));
        assert!(!dir.path().join("runs/a.json.tmp").exists());
        // A value of another shape does not load.
        assert_eq!(store.load::<String>("a"), None);
    }
}
