//! One error type whose message is a single line naming the file at fault.
//!
//! Users run roofline on dozens of inputs at once; an error that does not say which file is
//! wrong sends them hunting. Every reader attaches the path, and GDAL's multi-line messages are
//! folded into one line.

use std::fmt::Display;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something is wrong with one input or output file.
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    /// A problem not tied to one file: arguments, incompatible inputs, a model that does not fit.
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn file(path: impl AsRef<Path>, msg: impl Display) -> Self {
        Error::File {
            path: path.as_ref().to_path_buf(),
            msg: one_line(&msg.to_string()),
        }
    }

    pub fn invalid(msg: impl Display) -> Self {
        Error::Invalid(one_line(&msg.to_string()))
    }
}

impl From<linfa::Error> for Error {
    fn from(e: linfa::Error) -> Self {
        Error::invalid(e)
    }
}

impl From<hessboost::error::HessboostError> for Error {
    fn from(e: hessboost::error::HessboostError) -> Self {
        Error::invalid(format!("model: {e}"))
    }
}

/// Folds a (possibly multi-line) message into one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Attaches a file path to any error, e.g. `gdal::Dataset::open(p).at(p)?`.
pub trait AtFile<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T, E: Display> AtFile<T> for std::result::Result<T, E> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::file(path, e))
    }
}
