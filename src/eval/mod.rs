//! Evaluation: spatial [`folds`], [`cv`] (leave-one-city-out and spatial blocks), [`metrics`]
//! and the [`report`] they are written to.

pub mod cv;
pub mod html;
pub mod map;
pub mod metrics;
pub mod plots;
pub mod report;
pub mod rows;
pub mod scenario;
