//! A connection to one QEMU's monitor, whatever carries it.

use serde_json::Value;

use crate::live::qmp::{Qmp, QmpError};

/// One QEMU's monitor: commands in, their `return` values out. [`Qmp`]
/// speaks QMP on the QEMU's own socket; a management layer's pass-through
/// (libvirt's `qemu-monitor-command`) carries the same commands. Events
/// are the transport's own ([`Qmp::take_events`]).
pub trait Monitor {
    /// Run a command; its `return` value, or its error.
    fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError>;
}

impl Monitor for Qmp {
    fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        Qmp::execute(self, command, arguments)
    }
}
