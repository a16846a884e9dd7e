//! Stage-free numerics shared by every stage: exact [`percentile`]s and [`seeded`] streams.
//! Nothing here knows about buildings, files or models, so any layer may use it.

pub mod percentile;
pub mod seeded;
