//! The result store of a comparison: one JSON file per finished cell run
//! (and per oracle) under `OUT/runs/`, written atomically, so a comparison
//! interrupted or failed part-way resumes where it stopped.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The runs directory of a comparison.
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store under `out/runs`, created if needed.
    pub fn open(out: &Path) -> Result<Self> {
        let dir = out.join("runs");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self { dir })
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
