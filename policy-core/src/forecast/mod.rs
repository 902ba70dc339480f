//! Online forecasters of the dirty rate, and the ensemble that picks one.

pub mod arima;
pub mod baseline;
pub mod ensemble;
pub mod ets;
pub mod fixed_linalg;
pub mod ring;

use crate::decision::ModelKind;

/// A forecaster updated one observation at a time, in O(1) and without
/// allocating.
pub trait OnlineModel {
    /// Which model this is.
    fn kind(&self) -> ModelKind;
    /// Learn from the next observation.
    fn update(&mut self, y: f64);
    /// True once it has enough history to forecast.
    fn ready(&self) -> bool;
    /// Forecast `h ≥ 1` steps ahead.
    fn forecast(&self, h: usize) -> f64;
    /// A regime change was detected at value `y`: re-anchor fast.
    fn restart_at(&mut self, y: f64);
}
