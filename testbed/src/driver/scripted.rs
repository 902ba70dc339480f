//! A monitor that answers from a script, for the driver's tests.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{json, Value};

use super::monitor::Monitor;
use crate::live::qmp::QmpError;

/// Answers `query-migrate` with the next of `statuses` (the last one
/// repeats), other commands with the next of their scripted answers (the
/// last one repeats), refuses the commands in `refused`, answers `{}` to
/// the rest, and keeps every command it was sent.
#[derive(Debug, Default)]
pub struct Scripted {
    /// The `query-migrate` answers still to give.
    pub statuses: VecDeque<Value>,
    /// Every command sent, with its arguments, oldest first.
    pub sent: Vec<(String, Option<Value>)>,
    refused: BTreeSet<String>,
    answers: BTreeMap<String, VecDeque<Value>>,
}

impl Scripted {
    /// A source whose `query-migrate` reports these statuses in turn.
    pub fn with_statuses(statuses: &[&str]) -> Self {
        Self {
            statuses: statuses.iter().map(|s| json!({ "status": s })).collect(),
            ..Self::default()
        }
    }

    /// Make `command` fail as QEMU would refuse it.
    pub fn refuse(&mut self, command: &str) {
        self.refused.insert(command.to_string());
    }

    /// Answer `command` with these, in turn (the last one repeats).
    pub fn answer(&mut self, command: &str, answers: &[Value]) {
        self.answers
            .insert(command.to_string(), answers.iter().cloned().collect());
    }

    /// How many times `command` was sent.
    pub fn count(&self, command: &str) -> usize {
        self.sent.iter().filter(|(c, _)| c == command).count()
    }
}

impl Monitor for Scripted {
    fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        self.sent.push((command.to_string(), arguments));
        if self.refused.contains(command) {
            return Err(QmpError::Command {
                command: command.to_string(),
                class: "GenericError".into(),
                desc: "refused by the script".into(),
            });
        }
        let queue = if command == "query-migrate" {
            Some(&mut self.statuses)
        } else {
            self.answers.get_mut(command)
        };
        if let Some(queue) = queue {
            let answer = if queue.len() > 1 {
                queue.pop_front()
            } else {
                queue.front().cloned()
            };
            return Ok(answer.unwrap_or_else(|| json!({})));
        }
        Ok(json!({}))
    }
}
