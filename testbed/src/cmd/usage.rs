//! Usage errors: a command line the command cannot run as given (a value
//! out of range, flags that do not go together, a workload it does not
//! know). `kairos` exits 2 for them, as for the errors clap finds itself,
//! and 1 when a run it could start failed.

/// A command line the command cannot run as given.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Return early with a [`UsageError`] made like `format!`.
macro_rules! bail_usage {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::cmd::usage::UsageError(format!($($arg)*))))
    };
}
pub(crate) use bail_usage;

/// Marks an error of checking the command line as a usage error.
pub trait OrUsage<T> {
    /// The error, with its causes, as a [`UsageError`].
    fn or_usage(self) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> OrUsage<T> for Result<T, E> {
    fn or_usage(self) -> anyhow::Result<T> {
        self.map_err(|e| {
            let e: anyhow::Error = e.into();
            UsageError(format!("{e:#}")).into()
        })
    }
}

/// Whether `err`, or an error it was made from, is a usage error.
pub fn is_usage(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<UsageError>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    fn checked(n: i64) -> anyhow::Result<i64> {
        if n < 1 {
            bail_usage!("--n must be at least 1, got {n}");
        }
        Ok(n)
    }

    #[test]
    fn a_usage_error_is_found_under_context_and_says_its_message() {
        let err = checked(0).context("checking the flags").unwrap_err();
        assert!(is_usage(&err));
        assert_eq!(
            format!("{err:#}"),
            "checking the flags: --n must be at least 1, got 0"
        );
    }

    #[test]
    fn other_errors_are_not_usage_errors() {
        let err = anyhow::anyhow!("the source QEMU died");
        assert!(!is_usage(&err));
        let marked = Err::<(), _>(err).or_usage().unwrap_err();
        assert!(is_usage(&marked));
        assert_eq!(marked.to_string(), "the source QEMU died");
    }
}
