//! Evaluation: [`cv`] (leave-one-city-out and spatial blocks, on the folds of
//! [`crate::spatial::blocks`]), what-if [`scenario`]s of local data, [`ablation`] variants, the
//! held-out [`rows`] and their [`metrics`]. The report they are written to is
//! [`crate::render`]'s.

pub mod ablation;
pub mod cv;
pub mod metrics;
pub mod rows;
pub mod scenario;
