//! Evaluation: spatial [`folds`], [`cv`] (leave-one-city-out and spatial blocks), [`metrics`]
//! and the [`report`] they are written to.

pub mod cv;
pub mod metrics;
pub mod report;
pub mod rows;
pub mod scenario;
