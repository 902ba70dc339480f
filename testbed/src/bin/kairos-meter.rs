//! `kairos-meter`: turns a third-party benchmark's progress output into the
//! once-a-second report line the test-bed reads from the guest console:
//!
//! `kairos-load t=12.0 phase=1/sysbench-memory ops_per_s=812.5 max_gap_ms=0 unit=MiB/s`
//!
//! It reads the benchmark's stdout on stdin (lines end in `\n` or `\r`:
//! redis-benchmark rewrites one line with `\r`) and understands three
//! formats:
//! - `sysbench`: `[ 12s ] 812.50 MiB/sec` (sysbench memory, --report-interval=1);
//! - `redis`: `SET: rps=31796.0 (overall: …) …` (redis-benchmark, every 250 ms);
//! - `fio-terse`: fio `--output-format=terse --status-interval=1`, whose
//!   cumulative written KiB (field 47) and runtime (field 50) give the write
//!   rate in I/Os per second of `--block-bytes`.
//!
//! From the first report on, each second it prints the mean of the rates read in that second (0 when
//! none came: the benchmark stalled). `max_gap_ms` is how much longer than
//! the benchmark's own reporting interval the longest wait for a report was.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The progress formats understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Sysbench,
    Redis,
    FioTerse,
}

impl Format {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "sysbench" => Some(Self::Sysbench),
            "redis" => Some(Self::Redis),
            "fio-terse" => Some(Self::FioTerse),
            _ => None,
        }
    }

    /// How often the benchmark reports by itself.
    fn interval(self) -> Duration {
        match self {
            Self::Redis => Duration::from_millis(250),
            Self::Sysbench | Self::FioTerse => Duration::from_secs(1),
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Self::Sysbench => "MiB/s",
            Self::Redis => "requests/s",
            Self::FioTerse => "iops",
        }
    }
}

/// State of the fio parser: the previous cumulative sample.
#[derive(Debug, Default)]
struct FioState {
    last_kib: Option<f64>,
    last_runtime_ms: Option<f64>,
}

/// The rate a progress line reports, if it is one.
fn parse_rate(format: Format, line: &str, fio: &mut FioState, block_kib: f64) -> Option<f64> {
    match format {
        Format::Sysbench => {
            // "[ 12s ] 812.50 MiB/sec"
            let rest = line.trim_start().strip_prefix('[')?;
            let (_, after) = rest.split_once(']')?;
            let mut words = after.split_whitespace();
            let value: f64 = words.next()?.parse().ok()?;
            (words.next()? == "MiB/sec").then_some(value)
        }
        Format::Redis => {
            // "SET: rps=31796.0 (overall: 32844.0) avg_msec=…"
            let start = line.find("rps=")? + 4;
            let value: f64 = line[start..].split_whitespace().next()?.parse().ok()?;
            value.is_finite().then_some(value)
        }
        Format::FioTerse => {
            let fields: Vec<&str> = line.split(';').collect();
            if fields.len() < 50 || fields[0] != "3" {
                return None;
            }
            let kib: f64 = fields[46].parse().ok()?;
            let runtime_ms: f64 = fields[49].parse().ok()?;
            let rate = match (fio.last_kib, fio.last_runtime_ms) {
                (Some(k0), Some(t0)) if runtime_ms > t0 => {
                    Some((kib - k0) / block_kib / ((runtime_ms - t0) / 1000.0))
                }
                _ => None,
            };
            fio.last_kib = Some(kib);
            fio.last_runtime_ms = Some(runtime_ms);
            rate
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: BENCH | kairos-meter --format sysbench|redis|fio-terse --name NAME [--block-bytes N]");
    std::process::exit(2);
}

fn main() {
    let mut format = None;
    let mut name = String::from("bench");
    let mut block_bytes = 4096.0_f64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--format" => format = Format::parse(&value),
            "--name" => name = value,
            "--block-bytes" => block_bytes = value.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let Some(format) = format else { usage() };
    if !(block_bytes.is_finite() && block_bytes > 0.0) {
        usage();
    }

    // A reader thread splits stdin at '\n' and '\r' and sends the rates.
    let (tx, rx) = mpsc::channel::<f64>();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(std::io::stdin().lock());
        let mut fio = FioState::default();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match read_record(&mut reader, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf);
            if let Some(rate) = parse_rate(format, &line, &mut fio, block_bytes / 1024.0) {
                if tx.send(rate).is_err() {
                    break;
                }
            }
        }
    });

    // Nothing is printed before the benchmark's first report: the test-bed
    // takes the first line as "the load is running".
    let first = match rx.recv() {
        Ok(rate) => rate,
        Err(_) => {
            eprintln!("kairos-meter: {name}: the benchmark ended before its first report");
            std::process::exit(1);
        }
    };
    let start = Instant::now();
    let mut last_report = start;
    let mut next_tick = start + Duration::from_secs(1);
    let mut rates: Vec<f64> = Vec::with_capacity(16);
    rates.push(first);
    let mut max_wait = Duration::ZERO;
    loop {
        let now = Instant::now();
        let wait = next_tick.saturating_duration_since(now);
        match rx.recv_timeout(wait) {
            Ok(rate) => {
                let now = Instant::now();
                max_wait = max_wait.max(now - last_report);
                last_report = now;
                rates.push(rate);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                eprintln!("kairos-meter: {name}: the benchmark's output ended");
                std::process::exit(1);
            }
        }
        let now = Instant::now();
        max_wait = max_wait.max(now - last_report);
        let mean = if rates.is_empty() {
            0.0
        } else {
            rates.iter().sum::<f64>() / rates.len() as f64
        };
        let stall_ms = max_wait.saturating_sub(format.interval()).as_millis();
        println!(
            "kairos-load t={:.1} phase=1/{name} ops_per_s={mean:.1} max_gap_ms={stall_ms} verify_errors=0 unit={}",
            (now - start).as_secs_f64(),
            format.unit()
        );
        rates.clear();
        max_wait = Duration::ZERO;
        next_tick += Duration::from_secs(1);
        if next_tick < now {
            next_tick = now + Duration::from_secs(1);
        }
    }
}

/// Read up to and including the next '\n' or '\r'; returns bytes read.
fn read_record<R: Read>(reader: &mut BufReader<R>, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut read = 0;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(read);
        }
        if let Some(pos) = available.iter().position(|&b| b == b'\n' || b == b'\r') {
            buf.extend_from_slice(&available[..pos]);
            reader.consume(pos + 1);
            return Ok(read + pos + 1);
        }
        let len = available.len();
        buf.extend_from_slice(available);
        reader.consume(len);
        read += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysbench_interim_report() {
        let mut fio = FioState::default();
        assert_eq!(
            parse_rate(Format::Sysbench, "[ 2s ] 26675.58 MiB/sec", &mut fio, 4.0),
            Some(26675.58)
        );
        assert_eq!(
            parse_rate(Format::Sysbench, "Threads started!", &mut fio, 4.0),
            None
        );
    }

    #[test]
    fn redis_progress_line() {
        let mut fio = FioState::default();
        let line = "SET: rps=31796.0 (overall: 32844.0) avg_msec=0.095 (overall: 0.093)";
        assert_eq!(
            parse_rate(Format::Redis, line, &mut fio, 4.0),
            Some(31796.0)
        );
        let first = "SET: rps=0.0 (overall: -nan) avg_msec=-nan (overall: -nan)";
        assert_eq!(parse_rate(Format::Redis, first, &mut fio, 4.0), Some(0.0));
        assert_eq!(parse_rate(Format::Redis, "rps=-nan", &mut fio, 4.0), None);
    }

    fn terse(kib: u64, runtime_ms: u64) -> String {
        let mut fields = vec!["0".to_string(); 60];
        fields[0] = "3".into();
        fields[1] = "fio-3.33".into();
        fields[46] = kib.to_string();
        fields[49] = runtime_ms.to_string();
        fields.join(";")
    }

    #[test]
    fn fio_rate_is_the_difference_of_cumulative_samples() {
        let mut fio = FioState::default();
        assert_eq!(
            parse_rate(Format::FioTerse, &terse(1000, 1000), &mut fio, 4.0),
            None
        );
        // 4000 KiB more in 2 s of 4 KiB blocks: 500 I/O per second.
        assert_eq!(
            parse_rate(Format::FioTerse, &terse(5000, 3000), &mut fio, 4.0),
            Some(500.0)
        );
        assert_eq!(
            parse_rate(Format::FioTerse, "3;fio-3.33;w", &mut fio, 4.0),
            None
        );
    }

    #[test]
    fn records_split_at_carriage_returns() {
        let data = b"a\rb\nc";
        let mut reader = BufReader::new(&data[..]);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while read_record(&mut reader, &mut buf).unwrap() > 0 {
            out.push(String::from_utf8(buf.clone()).unwrap());
            buf.clear();
        }
        assert_eq!(out, ["a", "b", "c"]);
    }
}
