//! GDAL prints warnings straight to stderr by default (e.g. "GeoPackage user_version ... may
//! only be partially supported"); route them through `tracing` so `--quiet` and log filters
//! apply to them like to everything else.

use std::cell::RefCell;
use std::sync::Once;

static INIT: Once = Once::new();

thread_local! {
    /// The first GDAL failures on this thread since [`take_failures`] last ran: GDAL's last
    /// error is overwritten by follow-up failures (a PostgreSQL statement in an aborted
    /// transaction), the first says why.
    static FAILURES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Returns and forgets GDAL's failure messages on this thread, oldest first (at most 8).
pub fn take_failures() -> Vec<String> {
    FAILURES.with(|f| std::mem::take(&mut *f.borrow_mut()))
}

/// Installs the handler once per process; every GDAL entry point of the crate calls it first,
/// so callers never need to.
pub fn init() {
    INIT.call_once(|| {
        gdal::config::set_error_handler(|class, number, msg| {
            use gdal::errors::CplErrType;
            match class {
                CplErrType::Failure | CplErrType::Fatal => {
                    FAILURES.with(|f| {
                        let mut f = f.borrow_mut();
                        if f.len() < 8 {
                            f.push(msg.to_string());
                        }
                    });
                    tracing::debug!(target: "gdal", "error {number}: {msg}")
                }
                CplErrType::Warning => tracing::debug!(target: "gdal", "warning {number}: {msg}"),
                _ => tracing::trace!(target: "gdal", "{msg}"),
            }
        });
    });
}
