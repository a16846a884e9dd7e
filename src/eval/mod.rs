//! Evaluation: [`cv`] (leave-one-city-out and spatial blocks, on the folds of
//! [`crate::spatial::blocks`]), what-if [`scenario`]s of local data, the held-out [`rows`], their
//! [`metrics`] and the [`report`] they are written to.

pub mod ablation;
pub mod cv;
mod format;
pub mod html;
pub mod map;
pub mod metrics;
pub mod plots;
pub mod report;
pub mod rows;
pub mod scenario;
