//! Per-round trace files: CSV with a fixed header, written by the simulator
//! and by the patched QEMU, read by `kairos replay`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use kairos_policy_core::observation::RoundObservation;

/// The required columns, in order. Extra columns may follow.
pub const TRACE_COLUMNS: [&str; 8] = [
    "round",
    "time_ms",
    "dirtied_pages",
    "pending_bytes",
    "sent_bytes",
    "bandwidth_bytes_per_s",
    "page_size",
    "ram_bytes",
];

/// A trace file that could not be read, naming the file and the place.
#[derive(Debug, Error)]
pub enum TraceError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The header is not the trace header.
    #[error("{path}: header must start with '{expected}', found '{found}'")]
    Header {
        /// File.
        path: PathBuf,
        /// Required header.
        expected: String,
        /// Header found.
        found: String,
    },
    /// A field is missing or not a number.
    #[error("{path}:{line}: column '{column}': '{value}' is not a valid {kind}")]
    Field {
        /// File.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// Column name.
        column: &'static str,
        /// Text found.
        value: String,
        /// What was expected.
        kind: &'static str,
    },
    /// A row could not be parsed as CSV.
    #[error("{path}: {source}")]
    Csv {
        /// File.
        path: PathBuf,
        /// Cause.
        source: csv::Error,
    },
    /// The file has a header but no rows.
    #[error("{path}: no rounds in trace")]
    Empty {
        /// File.
        path: PathBuf,
    },
}

/// One row of a trace: the observation, plus whatever extra columns held.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRow {
    /// The round as the policy sees it.
    pub observation: RoundObservation,
    /// Extra columns after the required ones (e.g. decision, reason).
    pub extra: Vec<String>,
}

/// Read a trace from `path`.
pub fn read_trace_file(path: &Path) -> Result<Vec<TraceRow>, TraceError> {
    let file = std::fs::File::open(path).map_err(|source| TraceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_trace(file, path)
}

/// Read a trace from any reader; `path` names it in errors.
pub fn read_trace<R: Read>(reader: R, path: &Path) -> Result<Vec<TraceRow>, TraceError> {
    let mut csv_reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let csv_err = |source| TraceError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let headers = csv_reader.headers().map_err(csv_err)?.clone();
    let found: Vec<&str> = headers.iter().collect();
    if found.len() < TRACE_COLUMNS.len() || found[..TRACE_COLUMNS.len()] != TRACE_COLUMNS {
        return Err(TraceError::Header {
            path: path.to_path_buf(),
            expected: TRACE_COLUMNS.join(","),
            found: found.join(","),
        });
    }
    let mut rows = Vec::new();
    for record in csv_reader.records() {
        let record = record.map_err(csv_err)?;
        let line = record.position().map_or(0, |p| p.line());
        let text = |i: usize| record.get(i).unwrap_or("");
        let int = |i: usize| -> Result<u64, TraceError> {
            text(i).parse::<u64>().map_err(|_| TraceError::Field {
                path: path.to_path_buf(),
                line,
                column: TRACE_COLUMNS[i],
                value: text(i).to_string(),
                kind: "unsigned integer",
            })
        };
        let bandwidth = text(5).parse::<f64>().map_err(|_| TraceError::Field {
            path: path.to_path_buf(),
            line,
            column: TRACE_COLUMNS[5],
            value: text(5).to_string(),
            kind: "number",
        })?;
        rows.push(TraceRow {
            observation: RoundObservation {
                round: int(0)?,
                elapsed_ms: int(1)?,
                dirtied_pages: int(2)?,
                pending_bytes: int(3)?,
                sent_bytes: int(4)?,
                bandwidth_bytes_per_s: bandwidth,
                page_size_bytes: int(6)?,
                ram_bytes: int(7)?,
            },
            extra: record
                .iter()
                .skip(TRACE_COLUMNS.len())
                .map(str::to_string)
                .collect(),
        });
    }
    if rows.is_empty() {
        return Err(TraceError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(rows)
}

/// What the policy decided at a round: a written trace's extra columns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TracedDecision<'a> {
    /// The action's name (`continue`, `stop-and-copy`, …).
    pub action: &'a str,
    /// The reason's name.
    pub reason: &'a str,
    /// The throttle the policy asked for, %.
    pub throttle_pct: u8,
    /// The downtime whose worth of pages left the policy asked the next
    /// sync to come at, ms (0: QEMU's own threshold).
    pub sync_below_ms: f64,
}

/// The extra columns [`TraceWriter`] writes after [`TRACE_COLUMNS`].
pub const DECISION_COLUMNS: [&str; 4] = ["decision", "reason", "throttle_pct", "sync_below_ms"];

/// Writes traces in the same format, with the [`DECISION_COLUMNS`] after
/// the required ones.
pub struct TraceWriter<W: Write> {
    out: W,
}

impl<W: Write> TraceWriter<W> {
    /// Start a trace: writes the header.
    pub fn new(mut out: W) -> std::io::Result<Self> {
        writeln!(
            out,
            "{},{}",
            TRACE_COLUMNS.join(","),
            DECISION_COLUMNS.join(",")
        )?;
        Ok(Self { out })
    }

    /// Append one round.
    pub fn write(
        &mut self,
        obs: &RoundObservation,
        decision: &TracedDecision<'_>,
    ) -> std::io::Result<()> {
        writeln!(
            self.out,
            "{},{},{},{},{},{:.0},{},{},{},{},{},{:.0}",
            obs.round,
            obs.elapsed_ms,
            obs.dirtied_pages,
            obs.pending_bytes,
            obs.sent_bytes,
            obs.bandwidth_bytes_per_s,
            obs.page_size_bytes,
            obs.ram_bytes,
            decision.action,
            decision.reason,
            decision.throttle_pct,
            decision.sync_below_ms
        )
    }

    /// Flush and return the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_extra_columns() {
        let obs = RoundObservation {
            round: 3,
            elapsed_ms: 1500,
            dirtied_pages: 100,
            pending_bytes: 409_600,
            sent_bytes: 1 << 30,
            bandwidth_bytes_per_s: 125e6,
            page_size_bytes: 4096,
            ram_bytes: 1 << 30,
        };
        let mut w = TraceWriter::new(Vec::new()).unwrap();
        w.write(
            &obs,
            &TracedDecision {
                action: "continue",
                reason: "converging",
                throttle_pct: 0,
                sync_below_ms: 412.4,
            },
        )
        .unwrap();
        let bytes = w.finish().unwrap();
        let rows = read_trace(bytes.as_slice(), Path::new("t.csv")).unwrap();
        assert_eq!(rows[0].observation, obs);
        assert_eq!(rows[0].extra, vec!["continue", "converging", "0", "412"]);
    }

    #[test]
    fn names_file_line_and_column_of_a_bad_field() {
        let text = format!(
            "{}\n1,0,0,0,0,1e8,4096,1024\n2,x,0,0,0,1e8,4096,1024\n",
            TRACE_COLUMNS.join(",")
        );
        let err = read_trace(text.as_bytes(), Path::new("bad.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad.csv:3") && err.contains("time_ms"),
            "{err}"
        );
    }

    #[test]
    fn rejects_a_wrong_header() {
        let err = read_trace("a,b\n1,2\n".as_bytes(), Path::new("h.csv")).unwrap_err();
        assert!(matches!(err, TraceError::Header { .. }));
    }
}
