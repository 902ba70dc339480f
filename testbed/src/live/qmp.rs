//! A QMP client: JSON commands over a unix socket, events skipped.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use thiserror::Error;

/// A QMP failure.
#[derive(Debug, Error)]
pub enum QmpError {
    /// The socket could not be reached or broke.
    #[error("QMP {path}: {source}")]
    Io {
        /// Socket path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// QEMU answered the command with an error.
    #[error("QMP {command}: {class}: {desc}")]
    Command {
        /// Command name.
        command: String,
        /// QMP error class.
        class: String,
        /// QEMU's message.
        desc: String,
    },
    /// The answer was not QMP.
    #[error("QMP {path}: unexpected reply: {reply}")]
    Protocol {
        /// Socket path.
        path: String,
        /// What came back.
        reply: String,
    },
}

/// A connected QMP monitor.
pub struct Qmp {
    path: String,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connect (retrying until `timeout`) and negotiate capabilities.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Self, QmpError> {
        let shown = path.display().to_string();
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(QmpError::Io {
                        path: shown,
                        source: e,
                    })
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        let io = |source| QmpError::Io {
            path: shown.clone(),
            source,
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(io)?;
        let writer = stream.try_clone().map_err(io)?;
        let mut qmp = Self {
            path: shown.clone(),
            reader: BufReader::new(stream),
            writer,
        };
        qmp.read_reply()?; // greeting
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    fn read_reply(&mut self) -> Result<Value, QmpError> {
        loop {
            let mut line = String::new();
            let n = self
                .reader
                .read_line(&mut line)
                .map_err(|source| QmpError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            if n == 0 {
                return Err(QmpError::Io {
                    path: self.path.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "connection closed",
                    ),
                });
            }
            let value: Value = serde_json::from_str(&line).map_err(|_| QmpError::Protocol {
                path: self.path.clone(),
                reply: line.trim().to_string(),
            })?;
            if value.get("event").is_none() {
                return Ok(value);
            }
        }
    }

    /// Run a command; its `return` value, or its error.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        let mut msg = json!({ "execute": command });
        if let Some(args) = arguments {
            msg["arguments"] = args;
        }
        let mut text = msg.to_string();
        text.push('\n');
        self.writer
            .write_all(text.as_bytes())
            .map_err(|source| QmpError::Io {
                path: self.path.clone(),
                source,
            })?;
        let reply = self.read_reply()?;
        if let Some(err) = reply.get("error") {
            return Err(QmpError::Command {
                command: command.to_string(),
                class: err["class"].as_str().unwrap_or("?").to_string(),
                desc: err["desc"].as_str().unwrap_or("?").to_string(),
            });
        }
        Ok(reply.get("return").cloned().unwrap_or(Value::Null))
    }
}
