//! `roofline._native`: the roofline library's stages for Python, with no logic of their own.
//! Each function takes a city (a config's text with where it came from, and optionally its
//! footprints as an Arrow IPC stream), runs the library with the GIL released, and hands
//! tables back as Arrow IPC streams (WKB geometry marked `geoarrow.wkb` with its CRS), which
//! `roofline/__init__.py` turns into GeoDataFrames. Errors are the library's one-line messages
//! as exceptions of a `RooflineError` family, one class per error kind.

use std::path::{Path, PathBuf};

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use roofline::config::CityConfig;
use roofline::error::Error;
use roofline::features::{city_features, features_table, CityFeatures, FeatureOptions};
use roofline::io::memory::{footprints_in_memory, known_heights_in_memory, InMemory};
use roofline::io::output::arrow_ipc;
use roofline::io::table::Table;
use roofline::label::{label_city, labels_output};
use roofline::model::params::TrainParams;
use roofline::model::predict::predict_city;
use roofline::model::train::train_model;
use roofline::model::HeightModel;
use roofline::progress::Progress;

create_exception!(
    _native,
    RooflineError,
    PyException,
    "An error of roofline: one line naming the input at fault."
);
create_exception!(
    _native,
    ConfigError,
    RooflineError,
    "A city config that cannot be used."
);
create_exception!(
    _native,
    CrsError,
    RooflineError,
    "A coordinate reference system that is missing, unknown or wrong for the data."
);
create_exception!(
    _native,
    FootprintsError,
    RooflineError,
    "Footprints that cannot be read or used."
);
create_exception!(
    _native,
    PointCloudError,
    RooflineError,
    "A LAS/LAZ point cloud that cannot be read or used."
);
create_exception!(
    _native,
    RasterError,
    RooflineError,
    "An imagery raster that cannot be read or used."
);
create_exception!(
    _native,
    ModelFileError,
    RooflineError,
    "A model file that is not a roofline model, or of another format version."
);
create_exception!(
    _native,
    OutputError,
    RooflineError,
    "An output that cannot be written."
);
create_exception!(
    _native,
    FileError,
    RooflineError,
    "Another file that cannot be read."
);
create_exception!(
    _native,
    ModelError,
    RooflineError,
    "A model that cannot be trained or cannot predict these data."
);
create_exception!(
    _native,
    InvalidError,
    RooflineError,
    "Options or data that do not fit together."
);

/// The library's error as the exception of its kind, with its one-line message.
fn raise(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Config { .. } => ConfigError::new_err(msg),
        Error::Crs { .. } => CrsError::new_err(msg),
        Error::Footprints { .. } => FootprintsError::new_err(msg),
        Error::PointCloud { .. } => PointCloudError::new_err(msg),
        Error::Raster { .. } => RasterError::new_err(msg),
        Error::ModelFile { .. } | Error::ModelVersion { .. } => ModelFileError::new_err(msg),
        Error::Output { .. } => OutputError::new_err(msg),
        Error::File { .. } => FileError::new_err(msg),
        Error::Model(_) => ModelError::new_err(msg),
        _ => InvalidError::new_err(msg),
    }
}

/// A city as Python hands it over: the config's text (TOML, or JSON for a config given as a
/// dict), the path naming it in messages, the folder its relative paths are in, and optionally
/// its footprints in memory (an Arrow IPC stream and their CRS), which then replace
/// `[footprints] path` and `layer`.
struct City {
    text: String,
    json: bool,
    path: PathBuf,
    dir: PathBuf,
    footprints: Option<Vec<u8>>,
    crs: Option<String>,
    known: Option<Known>,
}

/// Known heights handed to `predict`: an Arrow IPC table with `height_m` and an `id` column
/// or a geometry (then its CRS), taken as heights of the model's label family. They replace
/// the config's `[label]` as a survey (the same join, checks and anchoring).
struct Known {
    ipc: Vec<u8>,
    crs: Option<String>,
    label: String,
}

/// A city from Python: (text, is JSON, path, folder, footprints IPC bytes or None, CRS or None).
type CityArgs = (
    String,
    bool,
    PathBuf,
    PathBuf,
    Option<Py<PyBytes>>,
    Option<String>,
);

impl City {
    /// The city of Python's arguments (the footprints' bytes copied, so the work can run
    /// without the GIL).
    fn of(py: Python<'_>, (text, json, path, dir, footprints, crs): CityArgs) -> City {
        City {
            text,
            json,
            path,
            dir,
            footprints: footprints.map(|b| b.as_bytes(py).to_vec()),
            crs,
            known: None,
        }
    }

    /// The checked config, and the in-memory tables it reads (kept alive with it).
    fn config(&self) -> roofline::error::Result<(CityConfig, Vec<InMemory>)> {
        if !self.json && self.footprints.is_none() && self.known.is_none() {
            // A config file's own text, so messages name its lines.
            return Ok((
                CityConfig::from_toml(&self.text, &self.path, &self.dir)?,
                Vec::new(),
            ));
        }
        let config_error =
            |msg: String| Error::of(roofline::error::FileKind::Config, &self.path, msg);
        let mut doc: toml::Table = if self.json {
            serde_json::from_str(&self.text).map_err(|e| config_error(e.to_string()))?
        } else {
            self.text
                .parse()
                .map_err(|e: toml::de::Error| config_error(e.message().to_string()))?
        };
        let mut held = Vec::new();
        if let Some(ipc) = &self.footprints {
            let crs = self.crs.as_deref().ok_or_else(|| {
                config_error(
                    "the footprints GeoDataFrame has no CRS: set one (gdf.set_crs(...))".into(),
                )
            })?;
            let memory = footprints_in_memory(ipc, crs)?;
            let section = doc
                .entry("footprints")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let Some(t) = section.as_table_mut() {
                t.insert("path".into(), path_value(&memory));
                t.insert("layer".into(), memory.layer().into());
                t.remove("sql");
            }
            held.push(memory);
        }
        if let Some(known) = &self.known {
            let memory = known_heights_in_memory(&known.ipc, known.crs.as_deref())?;
            doc.insert("label".into(), known.label_section(&memory)?.into());
            held.push(memory);
        }
        let cfg = CityConfig::from_toml(&doc.to_string(), &self.path, &self.dir)?;
        Ok((cfg, held))
    }
}

/// An in-memory table's path as a config value.
fn path_value(memory: &InMemory) -> toml::Value {
    toml::Value::String(memory.path().to_string_lossy().into_owned())
}

impl Known {
    /// The `[label]` that reads the table as a survey of the model's family: joined by its
    /// `id` column, else by where its geometries lie.
    fn label_section(&self, memory: &InMemory) -> roofline::error::Result<toml::Table> {
        let bad = |m: String| {
            Error::of(
                roofline::error::FileKind::Other,
                roofline::io::memory::KNOWN_IN_MEMORY,
                m,
            )
        };
        let fields = memory.fields();
        if !fields.iter().any(|f| f == "height_m") {
            return Err(bad(format!(
                "has no `height_m` column (columns: {})",
                fields.join(", ")
            )));
        }
        let mut t = toml::Table::new();
        t.insert("source".into(), "survey".into());
        t.insert("name".into(), self.label.clone().into());
        t.insert("path".into(), path_value(memory));
        t.insert("layer".into(), memory.layer().into());
        t.insert("field".into(), "height_m".into());
        if fields.iter().any(|f| f == "id") {
            t.insert("id".into(), "id".into());
        } else if !memory.has_geometry() {
            return Err(bad(
                "has neither an `id` column (the footprints' ids) nor a geometry to join by".into(),
            ));
        }
        Ok(t)
    }
}

/// Runs `stage` on a city's config without the GIL and hands its table back as Arrow IPC
/// bytes (encoded without the GIL too).
fn city_table(
    py: Python<'_>,
    city: City,
    stage: impl FnOnce(&CityConfig) -> roofline::error::Result<Table> + Send,
) -> PyResult<Py<PyBytes>> {
    let bytes = py
        .detach(|| {
            let (cfg, _held) = city.config()?;
            arrow_ipc(&stage(&cfg)?)
        })
        .map_err(raise)?;
    Ok(PyBytes::new(py, &bytes).unbind())
}

/// The configs (with the in-memory tables they read) and features of several cities.
type CitiesFeatures = (Vec<Vec<InMemory>>, Vec<CityConfig>, Vec<CityFeatures>);

/// [`CitiesFeatures`] of `cities`, known-neighbour features with `known_heights`.
fn cities_features(
    cities: &[City],
    known_heights: bool,
    progress: &Progress,
) -> roofline::error::Result<CitiesFeatures> {
    let (mut held, mut configs, mut features) = (Vec::new(), Vec::new(), Vec::new());
    for c in cities {
        let (cfg, h) = c.config()?;
        held.push(h);
        features.push(features_of(&cfg, known_heights, progress)?);
        configs.push(cfg);
    }
    Ok((held, configs, features))
}

fn features_of(
    cfg: &CityConfig,
    known_heights: bool,
    progress: &Progress,
) -> roofline::error::Result<CityFeatures> {
    city_features(
        cfg,
        FeatureOptions {
            known_heights,
            ..Default::default()
        },
        progress,
    )
}

/// Where progress goes, as Python decides it: `quiet` (nothing, and no summaries on stderr),
/// `python` (bars written to `sys.stderr`, so a notebook shows them in the cell) or `stderr`
/// (the command line's bars, drawn when stderr is a terminal).
fn progress(how: &str) -> PyResult<Progress> {
    match how {
        "quiet" => Ok(Progress::hidden()),
        "python" => Ok(Progress::drawn_to(|| {
            indicatif::ProgressDrawTarget::term_like(Box::new(SysStderr))
        })),
        "stderr" => Ok(Progress::new(false)),
        other => Err(InvalidError::new_err(format!(
            "progress is quiet, python or stderr, not {other}"
        ))),
    }
}

/// Python's `sys.stderr` as a one-line terminal for indicatif: a notebook's output area
/// understands a carriage return but no cursor movement, so a bar redraws its line in place.
#[derive(Debug)]
struct SysStderr;

impl SysStderr {
    fn call(&self, method: &str, text: Option<&str>) -> std::io::Result<()> {
        Python::attach(|py| -> PyResult<()> {
            let stderr = py.import("sys")?.getattr("stderr")?;
            match text {
                Some(t) => stderr.call_method1(method, (t,))?,
                None => stderr.call_method0(method)?,
            };
            Ok(())
        })
        .map_err(std::io::Error::other)
    }
}

impl indicatif::TermLike for SysStderr {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.call("write", Some(&format!("{s}\n")))
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.call("write", Some(s))
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.call(
            "write",
            Some(&format!("\r{:w$}\r", "", w = self.width() as usize)),
        )
    }
    fn flush(&self) -> std::io::Result<()> {
        self.call("flush", None)
    }
}

/// A trained height model (the `.model` files of the command line, `models/` included).
#[pyclass(module = "roofline._native", frozen)]
struct Model {
    inner: HeightModel,
}

#[pymethods]
impl Model {
    /// Writes the model file (atomically; the same bytes as `roofline train -o`).
    fn save(&self, path: PathBuf) -> PyResult<()> {
        self.inner.save(&path).map_err(raise)
    }

    /// The label family the model predicts (`roof-top`, `roof-p70`, `eave`, …).
    #[getter]
    fn label(&self) -> String {
        self.inner.meta.label.name.clone()
    }

    /// The features the model reads, in order.
    #[getter]
    fn feature_names(&self) -> Vec<String> {
        self.inner.meta.feature_names.clone()
    }

    /// The training cities and their labelled buildings.
    #[getter]
    fn training(&self) -> Vec<(String, usize)> {
        self.inner
            .meta
            .training
            .iter()
            .map(|t| (t.city.clone(), t.used))
            .collect()
    }

    /// `roofline predict` on one region: Arrow IPC of its output table. `known` (an Arrow IPC
    /// table and its CRS) gives known heights of the model's family, replacing `[label]`.
    #[pyo3(signature = (city, known = None, recalibrate = true, progress = "quiet"))]
    fn predict(
        &self,
        py: Python<'_>,
        city: CityArgs,
        known: Option<(Py<PyBytes>, Option<String>)>,
        recalibrate: bool,
        progress: &str,
    ) -> PyResult<Py<PyBytes>> {
        let model = &self.inner;
        let mut city = City::of(py, city);
        city.known = known.map(|(ipc, crs)| Known {
            ipc: ipc.as_bytes(py).to_vec(),
            crs,
            label: model.meta.label.name.clone(),
        });
        let progress = self::progress(progress)?;
        city_table(py, city, |cfg| {
            Ok(predict_city(model, cfg, recalibrate, &progress)?.0)
        })
    }
}

/// Reads a model file.
#[pyfunction]
fn load_model(py: Python<'_>, path: PathBuf) -> PyResult<Model> {
    let inner = py
        .detach(|| HeightModel::load(Path::new(&path)))
        .map_err(raise)?;
    Ok(Model { inner })
}

/// `roofline labels`: Arrow IPC of the city's labels table.
#[pyfunction]
#[pyo3(signature = (city, progress = "quiet"))]
fn labels(py: Python<'_>, city: CityArgs, progress: &str) -> PyResult<Py<PyBytes>> {
    let progress = self::progress(progress)?;
    city_table(py, City::of(py, city), |cfg| {
        let (footprints, labels) = label_city(cfg, &progress)?;
        Ok(labels_output(&labels, &footprints))
    })
}

/// `roofline features`: Arrow IPC of the city's features table.
#[pyfunction]
#[pyo3(signature = (city, known_heights = true, progress = "quiet"))]
fn features(
    py: Python<'_>,
    city: CityArgs,
    known_heights: bool,
    progress: &str,
) -> PyResult<Py<PyBytes>> {
    let progress = self::progress(progress)?;
    city_table(py, City::of(py, city), |cfg| {
        features_table(&[features_of(cfg, known_heights, &progress)?])
    })
}

/// `roofline train`: the model of these cities, `params` the training parameters as JSON
/// (roofline's [`TrainParams`], by name; unset ones keep the defaults).
#[pyfunction]
#[pyo3(signature = (cities, params = "{}", progress = "quiet"))]
fn train(py: Python<'_>, cities: Vec<CityArgs>, params: &str, progress: &str) -> PyResult<Model> {
    let cities: Vec<City> = cities.into_iter().map(|c| City::of(py, c)).collect();
    let progress = self::progress(progress)?;
    let inner = py
        .detach(|| {
            let opts = TrainParams::from_json(params)?.options()?;
            let (_held, _, features) = cities_features(&cities, opts.known_heights, &progress)?;
            let refs: Vec<&CityFeatures> = features.iter().collect();
            train_model(&refs, &opts)
        })
        .map_err(raise)?;
    Ok(Model { inner })
}

/// `roofline cv`: the cities cross-validated (`by` `city` or `blocks`; by default
/// leave-one-city-out from two cities on) with the `scenarios` of leave-one-city-out (known
/// buildings `20`, `0.02`, `20:clustered`; sparse LiDAR `density=0.05`, `strips=0.3`,
/// `tracks=500`), `params` the training parameters as JSON; the report folder written to
/// `output`.
#[pyfunction]
#[pyo3(signature = (cities, output, by = None, block_size = 250.0, folds = 5, buffer = roofline::eval::cv::DEFAULT_BUFFER_M, scenarios = Vec::new(), params = "{}", progress = "quiet"))]
#[allow(clippy::too_many_arguments)] // Python's keyword arguments, one per `roofline cv` option.
fn cv(
    py: Python<'_>,
    cities: Vec<CityArgs>,
    output: PathBuf,
    by: Option<String>,
    block_size: f64,
    folds: usize,
    buffer: f64,
    scenarios: Vec<String>,
    params: &str,
    progress: &str,
) -> PyResult<()> {
    use roofline::eval::cv::{cross_validate_with, Scenarios, Scheme};
    use roofline::eval::scenario::Scenario;
    let cities: Vec<City> = cities.into_iter().map(|c| City::of(py, c)).collect();
    let progress = self::progress(progress)?;
    py.detach(|| -> roofline::error::Result<()> {
        let by_city = match by.as_deref() {
            None => None,
            Some("city") => Some(true),
            Some("blocks") => Some(false),
            Some(other) => {
                return Err(Error::invalid(format!(
                    "`by` is \"city\" or \"blocks\", not \"{other}\""
                )))
            }
        };
        let scheme = Scheme::choose(by_city, cities.len(), block_size, folds, buffer)?;
        let mut opts = TrainParams::from_json(params)?.options()?;
        roofline::io::output::check_output_dir(&output)?;
        let scenarios = scenarios
            .iter()
            .map(|s| s.parse::<Scenario>())
            .collect::<roofline::error::Result<Vec<_>>>()?;
        opts.known_heights = scheme.known_heights(opts.known_heights);
        let (_held, configs, features) = cities_features(&cities, false, &progress)?;
        let scenarios = Scenarios {
            list: &scenarios,
            configs: &configs,
        };
        let out = cross_validate_with(&features, scheme, &opts, scenarios, &progress)?;
        roofline::render::report::write_report(&out, &features, &output)
    })
    .map_err(raise)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // The library's warnings (a skipped point among polygons, a clashing column name, …) on
    // stderr as the command line prints them; `ROOFLINE_LOG` sets the level.
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROOFLINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("roofline=warn,gdal=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(load_model, m)?)?;
    m.add_function(wrap_pyfunction!(labels, m)?)?;
    m.add_function(wrap_pyfunction!(features, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(cv, m)?)?;
    m.add("RooflineError", py.get_type::<RooflineError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("CrsError", py.get_type::<CrsError>())?;
    m.add("FootprintsError", py.get_type::<FootprintsError>())?;
    m.add("PointCloudError", py.get_type::<PointCloudError>())?;
    m.add("RasterError", py.get_type::<RasterError>())?;
    m.add("ModelFileError", py.get_type::<ModelFileError>())?;
    m.add("OutputError", py.get_type::<OutputError>())?;
    m.add("FileError", py.get_type::<FileError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("InvalidError", py.get_type::<InvalidError>())?;
    Ok(())
}
