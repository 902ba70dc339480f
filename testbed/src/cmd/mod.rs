//! The `kairos` subcommands, one module each; the options the live ones
//! share are in [`live_options`].

pub mod advise;
pub mod compare;
pub mod evacuate;
pub mod live_options;
pub mod profile;
pub mod record;
pub mod replay;
pub mod run;
pub mod sim;
pub mod soak;
pub mod starts;
pub mod usage;
