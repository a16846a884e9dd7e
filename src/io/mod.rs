//! Readers and writers: everything that touches a file format lives here, so later stages work
//! on typed in-memory tables only.

pub mod axis_order;
pub mod footprints;
pub mod gdal_setup;
pub mod layer;
pub mod output;
pub mod plausible;
pub mod pointcloud;
pub mod postgis;
pub mod raster;
pub mod table;
