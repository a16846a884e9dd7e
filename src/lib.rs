//! roofline: a height for every building footprint of a city.
//!
//! The modules read as the pipeline: [`io`] reads footprints, point clouds and rasters and writes
//! tables; [`label`] measures heights from LiDAR (or takes them from an attribute, OpenStreetMap
//! tags or a survey); [`features`] describes each building; [`model`] fits and predicts heights
//! with intervals; [`eval`] cross-validates; [`render`] writes what was measured as reports and
//! maps; [`plan`] cuts a large region into tile jobs and merges them. [`bench`] generates data
//! for scale benchmarks only. The `roofline` binary only parses arguments and wires these
//! stages together; it is not part of this library.

#![warn(missing_docs)]

pub mod bench;
pub mod config;
pub mod crs;
pub mod error;
pub mod eval;
pub mod features;
pub mod io;
pub mod label;
pub mod model;
pub mod plan;
pub mod progress;
pub mod render;
pub mod spatial;
pub mod stats;

pub use error::{Error, Result};
