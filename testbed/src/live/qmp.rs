//! A QMP client: JSON commands over a unix socket; the events that arrive
//! meanwhile are kept (the latest [`EVENTS_KEPT`]) for [`Qmp::take_events`].

use std::collections::VecDeque;
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
        /// Socket path (or the domain a pass-through carried it for).
        path: String,
        /// What came back.
        reply: String,
    },
    /// A management layer's pass-through to the monitor failed (the
    /// domain is gone, the daemon refused it).
    #[cfg(feature = "libvirt")]
    #[error("monitor of {domain}: {message}")]
    Passthrough {
        /// The domain.
        domain: String,
        /// The layer's message.
        message: String,
    },
}

/// The `return` value of `command`'s `reply`, or its error.
pub fn reply_value(command: &str, reply: &Value) -> Result<Value, QmpError> {
    if let Some(err) = reply.get("error") {
        return Err(QmpError::Command {
            command: command.to_string(),
            class: err["class"].as_str().unwrap_or("?").to_string(),
            desc: err["desc"].as_str().unwrap_or("?").to_string(),
        });
    }
    Ok(reply.get("return").cloned().unwrap_or(Value::Null))
}

/// The QMP message that runs `command` with `arguments`.
pub fn command_message(command: &str, arguments: Option<Value>) -> Value {
    let mut message = json!({ "execute": command });
    if let Some(args) = arguments {
        message["arguments"] = args;
    }
    message
}

/// How many events a [`Qmp`] keeps before it drops the oldest: a migration
/// with the `events` capability sends one per pass and per state change.
pub const EVENTS_KEPT: usize = 1024;

/// An asynchronous QMP event.
#[derive(Debug, Clone, PartialEq)]
pub struct QmpEvent {
    /// Its name (`STOP`, `RESUME`, `MIGRATION`, ...).
    pub name: String,
    /// When QEMU sent it: the host's wall clock, seconds since the epoch,
    /// to the microsecond.
    pub timestamp_s: f64,
    /// Its `data` (Null when it has none).
    pub data: Value,
}

impl QmpEvent {
    /// The event in a QMP message, or None when the message is not one.
    pub fn parse(message: &Value) -> Option<Self> {
        let name = message.get("event")?.as_str()?.to_string();
        let ts = message.get("timestamp")?;
        let seconds = ts.get("seconds")?.as_f64()?;
        let microseconds = ts.get("microseconds")?.as_f64()?;
        Some(Self {
            name,
            timestamp_s: seconds + microseconds * 1e-6,
            data: message.get("data").cloned().unwrap_or(Value::Null),
        })
    }
}

/// A connected QMP monitor.
pub struct Qmp {
    path: String,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    events: VecDeque<QmpEvent>,
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
            events: VecDeque::new(),
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
            match QmpEvent::parse(&value) {
                Some(event) => {
                    if self.events.len() == EVENTS_KEPT {
                        self.events.pop_front();
                    }
                    self.events.push_back(event);
                }
                None if value.get("event").is_some() => {} // no timestamp: not usable
                None => return Ok(value),
            }
        }
    }

    /// Run a command; its `return` value, or its error.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        let mut text = command_message(command, arguments).to_string();
        text.push('\n');
        self.writer
            .write_all(text.as_bytes())
            .map_err(|source| QmpError::Io {
                path: self.path.clone(),
                source,
            })?;
        let reply = self.read_reply()?;
        reply_value(command, &reply)
    }

    /// The events received so far (the latest [`EVENTS_KEPT`]), oldest
    /// first; they are handed over once. Events are read while commands
    /// wait for their replies, so run a command first to collect the ones
    /// sent since the last.
    pub fn take_events(&mut self) -> Vec<QmpEvent> {
        self.events.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_carries_its_name_time_and_data() {
        let e = QmpEvent::parse(&json!({
            "event": "MIGRATION",
            "data": { "status": "postcopy-active" },
            "timestamp": { "seconds": 1_700_000_000u64, "microseconds": 250_000 }
        }))
        .unwrap();
        assert_eq!(e.name, "MIGRATION");
        assert_eq!(e.data["status"], "postcopy-active");
        assert!((e.timestamp_s - 1_700_000_000.25).abs() < 1e-6);
    }

    #[test]
    fn a_reply_gives_its_return_or_its_error() {
        assert_eq!(
            reply_value(
                "query-status",
                &json!({ "return": { "status": "running" } })
            )
            .unwrap(),
            json!({ "status": "running" })
        );
        assert_eq!(
            reply_value("cont", &json!({ "return": {} })).unwrap(),
            json!({})
        );
        let err = reply_value(
            "migrate",
            &json!({ "error": { "class": "GenericError", "desc": "no" } }),
        )
        .unwrap_err();
        assert!(matches!(err, QmpError::Command { ref class, .. } if class == "GenericError"));
        assert_eq!(
            command_message("migrate", Some(json!({ "uri": "tcp:a:1" }))),
            json!({ "execute": "migrate", "arguments": { "uri": "tcp:a:1" } })
        );
        assert_eq!(command_message("cont", None), json!({ "execute": "cont" }));
    }

    #[test]
    fn replies_and_events_without_time_are_not_events() {
        assert!(QmpEvent::parse(&json!({ "return": {} })).is_none());
        assert!(QmpEvent::parse(&json!({ "event": "STOP" })).is_none());
    }
}
