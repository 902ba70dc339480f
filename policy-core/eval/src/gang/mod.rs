//! Gang migrations: a host's guests moved over one link — the
//! shared-link simulator ([`sim`]) and what operators run today
//! ([`baseline`]: fixed concurrencies, blind orders, and the score an
//! evacuation is judged by).

pub mod baseline;
pub mod plan;
pub mod sim;
