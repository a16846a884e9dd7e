//! Readers and writers: every file format the pipeline reads or writes is handled here, so later
//! stages work on typed in-memory tables only (the benchmark city generator, [`crate::bench`],
//! writes its LAZ tiles itself).

pub mod axis_order;
pub mod footprints;
pub mod gdal_setup;
pub mod layer;
pub mod memory;
pub mod output;
pub mod plausible;
pub mod pointcloud;
pub mod postgis;
pub mod raster;
pub mod table;
