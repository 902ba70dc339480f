//! Gang migrations: a host's guests moved over one link — the
//! shared-link simulator ([`sim`]) and what operators run today
//! ([`baseline`]: fixed concurrencies, blind orders, and the score an
//! evacuation is judged by), the planner ([`plan`]) and each simulated
//! guest's advice it may ask ([`outlook`]), and a rack of hosts draining
//! through one uplink ([`rack`]).

pub mod baseline;
pub mod outlook;
pub mod plan;
pub mod rack;
pub mod sim;
