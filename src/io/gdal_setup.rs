//! GDAL prints warnings straight to stderr by default (e.g. "GeoPackage user_version ... may
//! only be partially supported"); route them through `tracing` so `--quiet` and log filters
//! apply to them like to everything else.

use std::sync::Once;

static INIT: Once = Once::new();

/// Installs the handler once per process; every GDAL entry point of the crate calls it first,
/// so callers never need to.
pub fn init() {
    INIT.call_once(|| {
        gdal::config::set_error_handler(|class, number, msg| {
            use gdal::errors::CplErrType;
            match class {
                CplErrType::Failure | CplErrType::Fatal => {
                    tracing::debug!(target: "gdal", "error {number}: {msg}")
                }
                CplErrType::Warning => tracing::debug!(target: "gdal", "warning {number}: {msg}"),
                _ => tracing::trace!(target: "gdal", "{msg}"),
            }
        });
    });
}
