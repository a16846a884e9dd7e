//! Generated data for scale benchmarks only: a large [`city`] tiled from real patches, never
//! used to measure accuracy.

pub mod city;
