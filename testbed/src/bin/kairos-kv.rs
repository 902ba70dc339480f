//! `kairos-kv`: a YCSB-style key-value client for memcached, written here
//! because no YCSB package exists in the registries this project can
//! reach. It loads `--records` keys, then runs YCSB workload A (50 % reads,
//! 50 % updates) or B (95 % reads, 5 % updates) with Zipfian key choice
//! (θ = 0.99, YCSB's default) in a closed loop, one request at a time, and
//! reports once a second in the load generator's format:
//!
//! `kairos-load t=12.0 phase=1/ycsb-a ops_per_s=18000 max_gap_ms=3 verify_errors=0`
//!
//! Every value carries its key and a version; a read that returns anything
//! but the last version written counts as a verify error, so a migration
//! that loses or corrupts the store's memory is caught.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Zipf};

struct Args {
    server: String,
    read_fraction: f64,
    name: &'static str,
    records: u64,
    value_bytes: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: kairos-kv --workload a|b [--server HOST:PORT] [--records N] [--value-bytes N]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut args = Args {
        server: "127.0.0.1:11211".into(),
        read_fraction: 0.5,
        name: "ycsb-a",
        records: 100_000,
        value_bytes: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--server" => args.server = value(),
            "--workload" => match value().as_str() {
                "a" => (args.read_fraction, args.name) = (0.5, "ycsb-a"),
                "b" => (args.read_fraction, args.name) = (0.95, "ycsb-b"),
                _ => usage(),
            },
            "--records" => args.records = value().parse().unwrap_or_else(|_| usage()),
            "--value-bytes" => args.value_bytes = value().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if args.records == 0 || args.value_bytes < 32 {
        usage();
    }
    args
}

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    line: String,
    value: Vec<u8>,
}

impl Client {
    fn connect(server: &str) -> std::io::Result<Self> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let stream = loop {
            match TcpStream::connect(server) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        stream.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            line: String::new(),
            value: Vec::new(),
        })
    }

    fn set(&mut self, key: u64, version: u32, value_bytes: usize) -> std::io::Result<()> {
        let mut body = format!("k{key}:v{version}:").into_bytes();
        body.resize(value_bytes, b'x');
        write!(self.writer, "set k{key} 0 0 {}\r\n", body.len())?;
        self.writer.write_all(&body)?;
        self.writer.write_all(b"\r\n")?;
        self.line.clear();
        self.reader.read_line(&mut self.line)?;
        if self.line.trim_end() != "STORED" {
            return Err(std::io::Error::other(format!(
                "set k{key}: {}",
                self.line.trim_end()
            )));
        }
        Ok(())
    }

    /// The version the stored value carries (None: missing or malformed).
    fn get(&mut self, key: u64) -> std::io::Result<Option<u32>> {
        write!(self.writer, "get k{key}\r\n")?;
        self.line.clear();
        self.reader.read_line(&mut self.line)?;
        if self.line.starts_with("END") {
            return Ok(None);
        }
        let len: usize = self
            .line
            .trim_end()
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        self.value.resize(len + 2, 0);
        std::io::Read::read_exact(&mut self.reader, &mut self.value)?;
        self.line.clear();
        self.reader.read_line(&mut self.line)?; // END
        let text = String::from_utf8_lossy(&self.value[..len]);
        let mut parts = text.splitn(3, ':');
        let (k, v) = (parts.next(), parts.next());
        Ok(match (k, v) {
            (Some(k), Some(v)) if k == format!("k{key}") => {
                v.strip_prefix('v').and_then(|n| n.parse().ok())
            }
            _ => None,
        })
    }
}

fn main() {
    let args = parse_args();
    let mut client = Client::connect(&args.server).unwrap_or_else(|e| {
        eprintln!("kairos-kv: {}: {e}", args.server);
        std::process::exit(1);
    });
    let mut versions = vec![0u32; args.records as usize];
    for key in 0..args.records {
        if let Err(e) = client.set(key, 0, args.value_bytes) {
            eprintln!("kairos-kv: loading: {e}");
            std::process::exit(1);
        }
    }
    println!(
        "kairos-kv: loaded {} records of {} bytes; running {}",
        args.records, args.value_bytes, args.name
    );
    let zipf = Zipf::new(args.records as f64, 0.99).expect("valid Zipf parameters");
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let start = Instant::now();
    let mut report_at = start + Duration::from_secs(1);
    let (mut ops, mut verify_errors, mut max_gap) = (0u64, 0u64, Duration::ZERO);
    let mut last = Instant::now();
    loop {
        // Scatter the hot ranks over the key space, as YCSB does.
        let rank = zipf.sample(&mut rng) as u64 - 1;
        let key = rank.wrapping_mul(0x9E37_79B9_7F4A_7C15) % args.records;
        let result = if rng.random::<f64>() < args.read_fraction {
            client.get(key).map(|v| {
                if v != Some(versions[key as usize]) {
                    verify_errors += 1;
                }
            })
        } else {
            let version = versions[key as usize].wrapping_add(1);
            client
                .set(key, version, args.value_bytes)
                .map(|()| versions[key as usize] = version)
        };
        if let Err(e) = result {
            eprintln!("kairos-kv: {e}");
            std::process::exit(1);
        }
        ops += 1;
        let now = Instant::now();
        max_gap = max_gap.max(now - last);
        last = now;
        if now >= report_at {
            println!(
                "kairos-load t={:.1} phase=1/{} ops_per_s={ops} max_gap_ms={} verify_errors={verify_errors}",
                (now - start).as_secs_f64(),
                args.name,
                max_gap.as_millis()
            );
            let _ = std::io::stdout().flush();
            ops = 0;
            max_gap = Duration::ZERO;
            report_at += Duration::from_secs(1);
            if report_at < now {
                report_at = now + Duration::from_secs(1);
            }
        }
    }
}
