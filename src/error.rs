//! One error type, whose message is a single line naming the file at fault, and whose variants
//! say what kind of input failed so a library caller can match on it.
//!
//! Users run roofline on dozens of inputs at once; an error that does not say which file is
//! wrong sends them hunting. Every reader attaches the path, and GDAL's multi-line messages are
//! folded into one line. The underlying error (GDAL's, las's, std's) is kept as the
//! [`source`](std::error::Error::source) where there is one; its text is already part of the
//! one-line message, so a printer of the chain may show it twice.

use std::fmt::Display;
use std::path::{Path, PathBuf};

/// The error a wrapped library gave, kept for [`std::error::Error::source`].
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything roofline can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A city or region config (TOML): a syntax error, an unknown or missing key, a bad value.
    #[error("{}: {msg}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// The key at fault (`section.key`), where one is known.
        key: Option<String>,
        /// What is wrong, in one line.
        msg: String,
    },
    /// A coordinate reference system that cannot be parsed, or a transformation that fails.
    #[error("{msg}")]
    Crs {
        /// What is wrong, in one line, naming the CRS as the user wrote it.
        msg: String,
    },
    /// A footprint layer: unreadable, empty, no CRS, implausible geometry.
    #[error("{}: {msg}", path.display())]
    Footprints {
        /// The footprint file (or GDAL connection string).
        path: PathBuf,
        /// What is wrong, in one line.
        msg: String,
        /// The underlying error.
        #[source]
        source: Option<Source>,
    },
    /// A LAS/LAZ file: unreadable, corrupt, no CRS, no overlap with the footprints.
    #[error("{}: {msg}", path.display())]
    PointCloud {
        /// The point cloud file.
        path: PathBuf,
        /// What is wrong, in one line.
        msg: String,
        /// The underlying error.
        #[source]
        source: Option<Source>,
    },
    /// A raster (imagery band): unreadable, no CRS, no overlap with the footprints.
    #[error("{}: {msg}", path.display())]
    Raster {
        /// The raster file.
        path: PathBuf,
        /// What is wrong, in one line.
        msg: String,
        /// The underlying error.
        #[source]
        source: Option<Source>,
    },
    /// A model file that cannot be read: not a model, truncated, inconsistent.
    #[error("{}: {msg}", path.display())]
    ModelFile {
        /// The model file (empty when the model came from bytes).
        path: PathBuf,
        /// What is wrong, in one line.
        msg: String,
    },
    /// A model file written by another version of the format.
    #[error("{}model format version {found} is {}", file_prefix(path.as_deref()), version_advice(*found, *supported))]
    ModelVersion {
        /// The model file (none when the model came from bytes).
        path: Option<PathBuf>,
        /// The version the file says it is.
        found: u64,
        /// The only version this roofline reads.
        supported: u64,
    },
    /// An output that cannot be written (folder missing, not writable, unknown format).
    #[error("{}: {msg}", path.display())]
    Output {
        /// The output path.
        path: PathBuf,
        /// What is wrong, in one line.
        msg: String,
        /// The underlying error.
        #[source]
        source: Option<Source>,
    },
    /// Any other file (a folder to scan, a glob, a table read back).
    #[error("{}: {msg}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong, in one line.
        msg: String,
        /// The underlying error.
        #[source]
        source: Option<Source>,
    },
    /// Fitting or applying a model failed (too few labels, a degenerate feature matrix).
    #[error("{0}")]
    Model(String),
    /// A problem not tied to one file: arguments, incompatible inputs.
    #[error("{0}")]
    Invalid(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which kind of file an error is about: picks the [`Error`] variant, so readers attach a path
/// and a kind once, with [`AtFile::at_kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A city or region config: [`Error::Config`].
    Config,
    /// A footprint layer: [`Error::Footprints`].
    Footprints,
    /// A LAS/LAZ file: [`Error::PointCloud`].
    PointCloud,
    /// A raster: [`Error::Raster`].
    Raster,
    /// A model file: [`Error::ModelFile`].
    Model,
    /// An output: [`Error::Output`].
    Output,
    /// Anything else: [`Error::File`].
    Other,
}

impl Error {
    /// An error about a file of the given kind.
    pub fn of(kind: FileKind, path: impl AsRef<Path>, msg: impl Display) -> Self {
        Self::with_source(kind, path, one_line(&msg.to_string()), None)
    }

    fn with_source(
        kind: FileKind,
        path: impl AsRef<Path>,
        msg: String,
        source: Option<Source>,
    ) -> Self {
        let path = path.as_ref().to_path_buf();
        match kind {
            FileKind::Config => Error::Config {
                path,
                key: None,
                msg,
            },
            FileKind::Footprints => Error::Footprints { path, msg, source },
            FileKind::PointCloud => Error::PointCloud { path, msg, source },
            FileKind::Raster => Error::Raster { path, msg, source },
            FileKind::Model => Error::ModelFile { path, msg },
            FileKind::Output => Error::Output { path, msg, source },
            FileKind::Other => Error::File { path, msg, source },
        }
    }

    /// An error about a file that is none of the kinds above.
    pub fn file(path: impl AsRef<Path>, msg: impl Display) -> Self {
        Self::of(FileKind::Other, path, msg)
    }

    /// A config error about one key.
    pub fn config_key(path: impl AsRef<Path>, key: &str, msg: impl Display) -> Self {
        Error::Config {
            path: path.as_ref().to_path_buf(),
            key: Some(key.to_string()),
            msg: one_line(&msg.to_string()),
        }
    }

    /// A CRS error.
    pub fn crs(msg: impl Display) -> Self {
        Error::Crs {
            msg: one_line(&msg.to_string()),
        }
    }

    /// A model that cannot be fitted or applied.
    pub fn model(msg: impl Display) -> Self {
        Error::Model(one_line(&msg.to_string()))
    }

    /// A problem with arguments or with inputs taken together.
    pub fn invalid(msg: impl Display) -> Self {
        Error::Invalid(one_line(&msg.to_string()))
    }

    /// The file this error is about, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::Config { path, .. }
            | Error::Footprints { path, .. }
            | Error::PointCloud { path, .. }
            | Error::Raster { path, .. }
            | Error::ModelFile { path, .. }
            | Error::Output { path, .. }
            | Error::File { path, .. } => Some(path),
            Error::ModelVersion { path, .. } => path.as_deref(),
            Error::Crs { .. } | Error::Model(_) | Error::Invalid(_) => None,
        }
    }

    /// The same error, about `path` as a file of `kind`: for errors raised before the file was
    /// known (parsing bytes, a CRS string read from a file), the path and kind added by the caller.
    pub fn in_file(self, kind: FileKind, path: impl AsRef<Path>) -> Self {
        match self {
            Error::ModelVersion {
                found, supported, ..
            } => Error::ModelVersion {
                path: Some(path.as_ref().to_path_buf()),
                found,
                supported,
            },
            Error::Crs { msg } | Error::Model(msg) | Error::Invalid(msg) => {
                Self::with_source(kind, path, msg, None)
            }
            Error::Config { key, msg, .. } if kind == FileKind::Config => Error::Config {
                path: path.as_ref().to_path_buf(),
                key,
                msg,
            },
            other => {
                let msg = match &other {
                    Error::Config { msg, .. }
                    | Error::Footprints { msg, .. }
                    | Error::PointCloud { msg, .. }
                    | Error::Raster { msg, .. }
                    | Error::ModelFile { msg, .. }
                    | Error::Output { msg, .. }
                    | Error::File { msg, .. } => msg.clone(),
                    _ => other.to_string(),
                };
                Self::with_source(kind, path, msg, None)
            }
        }
    }
}

/// "path: " before a message about a file, nothing when the bytes came from no file.
fn file_prefix(path: Option<&Path>) -> String {
    path.map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

fn version_advice(found: u64, supported: u64) -> String {
    if found > supported {
        format!("newer than this roofline reads ({supported}); upgrade roofline")
    } else {
        format!(
            "older than this roofline reads ({supported}); retrain the model with this roofline"
        )
    }
}

impl From<linfa::Error> for Error {
    fn from(e: linfa::Error) -> Self {
        Error::model(e)
    }
}

impl From<hessboost::error::HessboostError> for Error {
    fn from(e: hessboost::error::HessboostError) -> Self {
        Error::model(format!("model: {e}"))
    }
}

/// Folds a (possibly multi-line) message into one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Attaches a file path (and kind) to any error, keeping it as the source, e.g.
/// `gdal::Dataset::open(p).at_kind(FileKind::Raster, p)?`.
pub trait AtFile<T> {
    /// The error, about `path` (of no particular kind).
    fn at(self, path: impl AsRef<Path>) -> Result<T>;
    /// The error, about `path` as a file of `kind`.
    fn at_kind(self, kind: FileKind, path: impl AsRef<Path>) -> Result<T>;
}

impl<T, E: Into<Source>> AtFile<T> for std::result::Result<T, E> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.at_kind(FileKind::Other, path)
    }

    fn at_kind(self, kind: FileKind, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| {
            let source: Source = e.into();
            let msg = one_line(&source.to_string());
            Error::with_source(kind, path, msg, Some(source))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_pick_variants_and_keep_the_source() {
        let io = std::fs::read("/no/such/file.laz").at_kind(FileKind::PointCloud, "a.laz");
        let e = io.unwrap_err();
        assert!(matches!(e, Error::PointCloud { .. }), "{e:?}");
        assert!(e.to_string().starts_with("a.laz: "), "{e}");
        let src = std::error::Error::source(&e).expect("source kept");
        assert!(src.downcast_ref::<std::io::Error>().is_some());
        assert_eq!(e.path(), Some(Path::new("a.laz")));
    }

    #[test]
    fn messages_are_one_line_and_versions_advise() {
        let e = Error::of(FileKind::Raster, "b.tif", "line one\n  line two");
        assert_eq!(e.to_string(), "b.tif: line one line two");
        let v = Error::ModelVersion {
            path: Some("m.model".into()),
            found: 9,
            supported: 3,
        };
        assert!(v.to_string().contains("newer") && v.to_string().contains("upgrade"));
        assert!(
            v.to_string().starts_with("m.model: model format version 9"),
            "{v}"
        );
        let from_bytes = Error::ModelVersion {
            path: None,
            found: 9,
            supported: 3,
        };
        assert!(
            from_bytes.to_string().starts_with("model format version 9"),
            "{from_bytes}"
        );
        assert_eq!(from_bytes.path(), None);
        let moved = Error::invalid("bad").in_file(FileKind::Model, "x.model");
        assert!(matches!(moved, Error::ModelFile { .. }));
        assert_eq!(moved.to_string(), "x.model: bad");
    }
}
