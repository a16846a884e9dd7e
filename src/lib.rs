//! roofline: a height for every building footprint of a city.
//!
//! The modules read as the pipeline: [`io`] reads footprints, point clouds and rasters and writes
//! tables; [`label`] measures heights from LiDAR (or takes them from an attribute); later stages
//! compute features, fit models and cross-validate. The `roofline` binary only parses arguments and
//! wires these stages together; it is not part of this library.

#![warn(missing_docs)]

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
pub mod spatial;
pub mod stats;

pub use error::{Error, Result};
