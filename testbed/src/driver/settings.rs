//! The capabilities and parameters a migration runs with.

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

use super::monitor::Monitor;

/// What is set before a migration starts: capabilities on both sides (QEMU
/// refuses a migration whose two ends disagree on most of them), the
/// parameters on the source, where the migration thread reads them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MigrationSettings {
    /// Capabilities switched on, on both sides.
    pub capabilities: Vec<String>,
    /// Capabilities switched on on the source only (`events`: the
    /// source's state changes as events).
    pub source_capabilities: Vec<String>,
    /// `migrate-set-parameters` arguments for the source.
    pub parameters: Map<String, Value>,
}

impl MigrationSettings {
    /// Set them: the source's own capabilities, then the shared ones on
    /// the source and on the destination (when there is a monitor to it),
    /// then the parameters.
    pub fn apply(
        &self,
        source: &mut dyn Monitor,
        destination: Option<&mut dyn Monitor>,
    ) -> Result<()> {
        if !self.source_capabilities.is_empty() {
            source
                .execute(
                    "migrate-set-capabilities",
                    Some(capabilities_argument(&self.source_capabilities)),
                )
                .context("the source's capabilities")?;
        }
        if !self.capabilities.is_empty() {
            let argument = capabilities_argument(&self.capabilities);
            source
                .execute("migrate-set-capabilities", Some(argument.clone()))
                .context("the capabilities on the source")?;
            if let Some(destination) = destination {
                destination
                    .execute("migrate-set-capabilities", Some(argument))
                    .context("the capabilities on the destination")?;
            }
        }
        if !self.parameters.is_empty() {
            source
                .execute(
                    "migrate-set-parameters",
                    Some(Value::Object(self.parameters.clone())),
                )
                .context("the migration parameters")?;
        }
        Ok(())
    }
}

/// `migrate-set-capabilities`' argument switching `names` on.
pub fn capabilities_argument(names: &[String]) -> Value {
    let list: Vec<Value> = names
        .iter()
        .map(|name| json!({ "capability": name, "state": true }))
        .collect();
    json!({ "capabilities": list })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::scripted::Scripted;

    fn settings() -> MigrationSettings {
        let mut parameters = Map::new();
        parameters.insert("downtime-limit".into(), json!(300));
        MigrationSettings {
            capabilities: vec!["postcopy-ram".into()],
            source_capabilities: vec!["events".into()],
            parameters,
        }
    }

    #[test]
    fn capabilities_reach_both_sides_and_parameters_the_source_only() {
        let mut source = Scripted::default();
        let mut destination = Scripted::default();
        settings()
            .apply(&mut source, Some(&mut destination))
            .unwrap();
        let names = |m: &Scripted| m.sent.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&source),
            [
                "migrate-set-capabilities",
                "migrate-set-capabilities",
                "migrate-set-parameters"
            ]
        );
        assert_eq!(names(&destination), ["migrate-set-capabilities"]);
        assert_eq!(
            destination.sent[0].1,
            Some(json!({ "capabilities": [{ "capability": "postcopy-ram", "state": true }] }))
        );
        assert_eq!(source.sent[2].1, Some(json!({ "downtime-limit": 300 })));
    }

    #[test]
    fn nothing_is_sent_for_nothing_to_set() {
        let mut source = Scripted::default();
        MigrationSettings::default()
            .apply(&mut source, None)
            .unwrap();
        assert!(source.sent.is_empty());
    }

    #[test]
    fn a_refused_parameter_is_an_error_naming_what_was_set() {
        let mut source = Scripted::default();
        source.refuse("migrate-set-parameters");
        let err = settings().apply(&mut source, None).unwrap_err();
        assert!(
            format!("{err:#}").contains("the migration parameters"),
            "{err:#}"
        );
    }
}
