//! The `roofline` command line: parses arguments, wires the library's stages, prints summaries.
//! No processing happens here.

mod bench_city;
mod demo;
mod features;
mod labels;
mod models;
mod plan;
mod report;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use roofline::error::{Error, Result};
use roofline::eval::ablation::Variant;
use roofline::features::cache::FeatureCache;
use roofline::label::sparsify::Sparsify;
use roofline::model::anchor::{Draw, Reveal};
use roofline::model::intervals::IntervalRule;
use roofline::model::params::PointLoss;
use roofline::model::ModelKind;
use roofline::plan::Stage;
use roofline::progress::Progress;

#[derive(Parser, Debug)]
#[command(
    name = "roofline",
    version,
    about = "A height for every building footprint of a city"
)]
pub struct Cli {
    /// No progress bars (summaries and warnings still print).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// More log output (-v info, -vv debug).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Measure building heights from LiDAR (or read them from an attribute) for one city.
    Labels(LabelsArgs),
    /// Compute per-building features (and labels, where a city has them) for one or more cities.
    Features(FeaturesArgs),
    /// Train a height model on labelled cities.
    Train(TrainArgs),
    /// Predict heights for regions (city configs, labels optional) with a trained model.
    ///
    /// A region config with a [label] section (a field some footprints carry, OpenStreetMap
    /// tags, a survey file, LiDAR) gives known heights: those buildings keep them (source
    /// measured, survey, osm_height, osm_levels) and recalibrate the prediction for the rest
    /// (source recalibrated); without one every height comes from the model (source
    /// predicted).
    Predict(PredictArgs),
    /// Cross-validate: leave-one-city-out or spatial blocks; writes a report folder.
    Cv(CvArgs),
    /// Export a model's point booster for other tools.
    Export(ExportArgs),
    /// Run the whole pipeline on the shipped data (labels, cross-validation, training, prediction).
    Demo(DemoArgs),
    /// Render a cross-validation folder's report.html again from its metrics.json and predictions.
    Report(ReportArgs),
    /// Cut a city into tile jobs for separate processes or machines (see `--job` and `merge`).
    Plan(PlanArgs),
    /// Join a plan's partitions into the table a single run writes (same rows, columns, order).
    Merge(MergeArgs),
    /// Write a large benchmark city tiled from the shipped real data (for benchmarks only).
    ///
    /// Copies of the Delft and Amsterdam AHN3 surveys and their footprints, shifted on a grid
    /// (ids made unique, the arrangement drawn from --seed), cut into square LAZ tiles that
    /// buildings straddle; writes DIR/tiles/*.laz, DIR/footprints.gpkg and DIR/city.toml (a
    /// normal city config with LiDAR labels). Real measurements, but not a real place: use it
    /// to time roofline, never to judge its accuracy.
    BenchCity(BenchCityArgs),
    /// Describe what roofline reads from a city config: CRS, footprints, point clouds, rasters.
    Inspect(InspectArgs),
}

/// The arguments of `roofline labels`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["output", "job"])))]
pub struct LabelsArgs {
    /// City config (TOML).
    #[arg(required_unless_present = "job")]
    pub city: Option<PathBuf>,
    /// Output table: .csv, .parquet, .gpkg, .geojson, .fgb, or PG:dbname=... with --table.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub db: TableArgs,
    #[command(flatten)]
    pub job: JobArg,
}

/// The arguments of `roofline features`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["output", "job"])))]
pub struct FeaturesArgs {
    /// City or region configs (TOML).
    #[arg(required_unless_present = "job")]
    pub cities: Vec<PathBuf>,
    /// Output table: .parquet (GeoParquet), .csv, .gpkg, .geojson, .fgb, or PG:dbname=...
    /// with --table.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub db: TableArgs,
    /// Leave out the known-neighbour-height features.
    #[arg(long)]
    pub no_known_heights: bool,
    #[command(flatten)]
    pub job: JobArg,
}

/// The arguments of `roofline train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// City configs (TOML) with labels.
    #[arg(required = true)]
    pub cities: Vec<PathBuf>,
    /// Model file to write (e.g. models/roof-p70.model).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Train for this region (a config; labels not needed): training buildings that look
    /// like its buildings weigh more (gbm only). The model is then meant for that region.
    #[arg(long, value_name = "REGION.toml")]
    pub adapt_to: Option<PathBuf>,
    /// Fit the point model only: no 90 % intervals (their quantile models and calibration
    /// folds are most of the training time); predict then leaves the interval columns empty.
    #[arg(long)]
    pub no_intervals: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub cache: CacheArg,
}

/// The arguments of `roofline predict`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["output", "job"])))]
pub struct PredictArgs {
    /// Model file.
    #[arg(long)]
    pub model: PathBuf,
    /// Region configs (TOML); a [label] section in one gives known heights.
    #[arg(required_unless_present = "job")]
    pub regions: Vec<PathBuf>,
    /// Output: .gpkg, .parquet (GeoParquet), .geojson, .fgb, .shp or .csv, geometry in the
    /// input's CRS; or .html, a 3D map of the buildings coloured by height (works offline); or a
    /// PostGIS table: PG:dbname=... with --table.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub db: TableArgs,
    #[command(flatten)]
    pub local: LocalArgs,
    /// Carry only these attributes of the footprint file (comma-separated; default: all).
    #[arg(long, value_delimiter = ',', conflicts_with = "no_keep")]
    pub keep_columns: Option<Vec<String>>,
    /// Carry none of the footprint file's attributes except its id field.
    #[arg(long)]
    pub no_keep: bool,
    #[command(flatten)]
    pub job: JobArg,
    #[command(flatten)]
    pub cache: CacheArg,
}

/// The arguments of `roofline cv`.
#[derive(clap::Args, Debug)]
pub struct CvArgs {
    /// City configs (TOML) with labels.
    #[arg(required = true)]
    pub cities: Vec<PathBuf>,
    /// Report folder (metrics.json, predictions.parquet/.csv, report.md, report.html).
    #[arg(short, long)]
    pub output: PathBuf,
    /// city: leave one city out (default with two or more cities); blocks: spatial k-fold inside each city.
    #[arg(long, value_enum)]
    pub by: Option<By>,
    /// Block size (m) for --by blocks.
    #[arg(long, default_value_t = 250.0)]
    pub block_size: f64,
    /// Folds for --by blocks.
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// For --by blocks: training buildings within this distance (m) of a test block are
    /// left out of that fold (default: the largest context radius; 0 turns it off).
    #[arg(long, default_value_t = roofline::eval::cv::DEFAULT_BUFFER_M)]
    pub buffer: f64,
    /// Scenario of leave-one-city-out, repeatable: the held-out city keeps only a degraded
    /// copy of its own survey (density=PTS_PER_M2 random thinning, strips=SHARE parallel
    /// flight strips, tracks=SPACING_M spaceborne-like lines); its buildings still hit are
    /// measured directly and recalibrate the model for the rest. Cities with LiDAR labels only.
    #[arg(long, value_name = "KIND=VALUE")]
    pub sparse_lidar: Vec<Sparsify>,
    /// Scenario of leave-one-city-out, repeatable: this share (0.02) or number (20) of the
    /// held-out city's labelled buildings (seeded) is known and recalibrates the model; the
    /// rest are scored. `20:clustered` draws them in one district (as OpenStreetMap tags
    /// and surveys usually are), `20:spread` over the city (the --local-draw default).
    #[arg(long, value_name = "SHARE|COUNT[:DRAW]")]
    pub local_labels: Vec<LocalLabels>,
    /// Where --local-labels buildings lie unless one says: spread over the city, or
    /// clustered in one district.
    #[arg(long, value_parser = choice::<Draw>(), default_value = "spread")]
    pub local_draw: Draw,
    /// Ablation of leave-one-city-out, repeatable: retrain every fold with one change
    /// (forest, huber, squared-log, gamma, unconstrained, domain-weights, wide-context,
    /// city-ranks, linear-leaves, absolute-level, mean-level, full-structure, no-spread-cap, or all)
    /// next to the default, over --ablation-seeds seeds; a table in
    /// report.md and `ablation` in metrics.json.
    #[arg(long, value_name = "VARIANT")]
    pub ablate: Vec<Ablate>,
    /// Seeds of the ablation (the --seed and the ones after it).
    #[arg(long, default_value_t = 3)]
    pub ablation_seeds: u64,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub cache: CacheArg,
}

/// The arguments of `roofline export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Model file.
    pub model: PathBuf,
    /// Write XGBoost JSON (loadable with xgboost.Booster().load_model) with feature names.
    #[arg(long, required = true)]
    pub xgboost_json: bool,
    /// JSON file to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// The region the booster will predict (a city config): a model with a city level
    /// needs it, for the level its output is relative to.
    #[arg(long)]
    pub region: Option<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArg,
}

/// The arguments of `roofline demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// The shipped data folder.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// Output folder.
    #[arg(long, default_value = "out")]
    pub output: PathBuf,
    /// Folder for the trained model.
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
}

/// The arguments of `roofline report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Folder written by `roofline cv`.
    pub cv_dir: PathBuf,
}

/// The arguments of `roofline plan`.
#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// City config (TOML).
    pub city: PathBuf,
    /// Grid square size (m), used when the city has no LiDAR (else its LiDAR tiles are the
    /// jobs) or with --grid.
    #[arg(long, default_value_t = 1000.0)]
    pub tile_size: f64,
    /// Cut on the grid even when the city has LiDAR tiles.
    #[arg(long)]
    pub grid: bool,
    /// Plan folder to create (must be new or empty).
    #[arg(short, long)]
    pub output: PathBuf,
}

/// The arguments of `roofline merge`.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// Plan folder.
    pub plan: PathBuf,
    /// Which partitions: labels, features or predictions (default: the only complete one).
    #[arg(long, value_parser = choice::<Stage>())]
    pub stage: Option<Stage>,
    /// Output table: .parquet (GeoParquet), .gpkg, .csv, .geojson, .fgb, or PG:dbname=...
    /// with --table.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub db: TableArgs,
}

/// The arguments of `roofline bench-city`.
#[derive(clap::Args, Debug)]
pub struct BenchCityArgs {
    /// Folder to write the city into.
    pub dir: PathBuf,
    /// Buildings in the city (100 000 gives about 70 M points).
    #[arg(long)]
    pub buildings: usize,
    /// Seed of the arrangement.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Side of a LAZ tile (m).
    #[arg(long, default_value_t = 1000.0)]
    pub tile_size: f64,
    /// The shipped data folder (holds cities/delft-3dfier.toml and cities/amsterdam-centre.toml).
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
}

/// The arguments of `roofline inspect`.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// City configs (TOML).
    #[arg(required = true)]
    pub configs: Vec<PathBuf>,
}

/// The feature cache, for the commands that compute features (train, predict, cv, export).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CacheArg {
    /// Keep each city's labels and features in this folder and reuse them while its config,
    /// its input files and roofline itself are unchanged; default: $ROOFLINE_CACHE when set,
    /// else no cache.
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
}

impl CacheArg {
    /// The cache the flag or the environment names, if any.
    fn open(&self) -> Option<FeatureCache> {
        self.cache
            .clone()
            .or_else(|| std::env::var_os("ROOFLINE_CACHE").map(PathBuf::from))
            .map(FeatureCache::new)
    }
}

/// What a command's work carries besides its arguments: the progress bars (hidden with
/// --quiet) and the feature cache, when --cache or ROOFLINE_CACHE asks for one.
pub struct Context {
    /// Bars on stderr, or hidden.
    pub progress: Progress,
    /// Where labels and features are kept between runs.
    pub cache: Option<FeatureCache>,
}

impl Context {
    fn new(progress: Progress, cache: &CacheArg) -> Context {
        Context {
            progress,
            cache: cache.open(),
        }
    }
}

/// One job of a plan instead of whole cities.
#[derive(clap::Args, Debug, Clone)]
pub struct JobArg {
    /// Run one job of a plan (PLAN_DIR/jobs/N, from `roofline plan`) and write its partition
    /// PLAN_DIR/<labels|features|predictions>/tile=N/part.parquet.
    #[arg(long, value_name = "JOB_DIR", conflicts_with = "output")]
    pub job: Option<PathBuf>,
}

/// Where a table goes in a PostgreSQL/PostGIS database (`-o PG:dbname=...`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TableArgs {
    /// With -o PG:...: the table to write (NAME or SCHEMA.NAME), created in one transaction
    /// with its CRS as SRID and a spatial index.
    #[arg(long, value_name = "[SCHEMA.]NAME")]
    pub table: Option<String>,
    /// With -o PG:... --table: replace an existing table (dropped and rewritten in the same
    /// transaction); without it an existing table is an error and is left untouched.
    #[arg(long)]
    pub overwrite: bool,
}

impl TableArgs {
    /// An error when given with `--job` (a job writes its partition, not a table).
    fn not_with_job(&self) -> Result<()> {
        if self.table.is_some() || self.overwrite {
            return Err(roofline::error::Error::invalid(
                "--table and --overwrite go with -o; a --job run writes its plan partition (give them to `roofline merge`)",
            ));
        }
        Ok(())
    }

    /// The library's output options.
    pub fn options(&self) -> roofline::io::output::TableOptions {
        roofline::io::output::TableOptions {
            table: self.table.clone(),
            overwrite: self.overwrite,
        }
    }
}

/// How `predict` uses a region's own data (measured labels, a sparse survey in its `[lidar]`).
#[derive(clap::Args, Debug, Clone)]
pub struct LocalArgs {
    /// Predict from other cities only: do not correct the model with the region's measured
    /// or directly estimated buildings.
    #[arg(long)]
    pub no_recalibrate: bool,
    /// What-if: thin the region's sparse survey further before measuring from it
    /// (density=PTS_PER_M2, strips=SHARE or tracks=SPACING_M).
    #[arg(long, value_name = "KIND=VALUE")]
    pub sparse_lidar: Option<Sparsify>,
    /// What-if: keep only this share (0.02) or number (20) of the region's measured buildings
    /// (seeded) as measured.
    #[arg(long, value_name = "SHARE|COUNT")]
    pub local_labels: Option<Reveal>,
    /// Where the --local-labels buildings lie: spread over the region or clustered in one
    /// district.
    #[arg(long, value_parser = choice::<Draw>(), default_value = "spread")]
    pub local_draw: Draw,
    /// Seed of the what-if choices.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// How `cv` splits the cities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    /// Leave one city out.
    City,
    /// Spatial k-fold of square blocks inside each city.
    Blocks,
}

/// Stack of each worker thread (see `main`'s pool).
const WORKER_STACK_BYTES: usize = 64 << 20;

/// Model choices shared by `train` and `cv`.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model kind.
    #[arg(long, value_parser = choice::<ModelKind>(), default_value = "gbm")]
    pub model: ModelKind,
    /// Seed for every random choice; the same seed gives the same model on any thread count.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Boosting rounds (gbm) or trees (forest).
    #[arg(long)]
    pub trees: Option<usize>,
    /// gbm learning rate.
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// gbm leaves per tree (leaf-wise growth).
    #[arg(long)]
    pub max_leaves: Option<usize>,
    /// gbm depth limit (depth-wise growth instead of leaf-wise).
    #[arg(long)]
    pub max_depth: Option<usize>,
    /// gbm minimum buildings per leaf (hessian weight).
    #[arg(long)]
    pub min_leaf: Option<f64>,
    /// gbm row share per tree.
    #[arg(long)]
    pub subsample: Option<f64>,
    /// gbm feature share per tree.
    #[arg(long)]
    pub colsample: Option<f64>,
    /// gbm features per tree at most (default 20; 0: no bound, `--colsample` alone decides).
    #[arg(long)]
    pub max_features: Option<usize>,
    /// gbm histogram bins per feature (2–256; default 64).
    #[arg(long)]
    pub max_bin: Option<usize>,
    /// gbm leaves that are linear in the features of their path, with this slope penalty (they
    /// extrapolate trends past the training range; default: constant leaves).
    #[arg(long, value_name = "PENALTY")]
    pub linear_leaves: Option<f64>,
    /// Point loss for gbm: squared (default), huber (pseudo-Huber, slope 1 m), or one of the
    /// relative losses squared-log and gamma.
    #[arg(long, value_parser = choice::<PointLoss>(), default_value = "squared")]
    pub loss: PointLoss,
    /// Stop boosting when a 10 % validation share has not improved for this many rounds (a
    /// random, not spatial, share: neighbours of validation buildings train, so it stops late).
    #[arg(long)]
    pub early_stopping: Option<usize>,
    /// Use known-neighbour-height features (regions where some buildings are measured; in
    /// `cv`, only with --by blocks, recomputed per fold from its training labels).
    #[arg(long)]
    pub known_heights: bool,
    /// Allow cities whose label definitions differ.
    #[arg(long)]
    pub allow_mixed_labels: bool,
    /// How the 90 % interval is calibrated across training cities: pooled (all held-out
    /// cities' scores together), worst-city (the largest city correction) or scaled-worst-city
    /// (the same on scores scaled by the quantile spread).
    #[arg(long, value_parser = choice::<IntervalRule>(), default_value = "scaled-worst-city")]
    pub intervals: IntervalRule,
}

/// An error in the command line's words: the library names its parameters in backticks
/// (`` `tile_size` ``, as a Python caller passes them); each one that is a flag of this
/// command line becomes the flag (`--tile-size`).
fn as_flags(msg: &str) -> String {
    use clap::CommandFactory;
    let cli = Cli::command();
    let mut flags: Vec<String> = cli
        .get_arguments()
        .chain(cli.get_subcommands().flat_map(|c| c.get_arguments()))
        .filter_map(|a| a.get_long().map(String::from))
        .collect();
    flags.sort();
    flags.dedup();
    let mut out = msg.to_string();
    for flag in flags {
        out = out.replace(
            &format!("`{}`", flag.replace('-', "_")),
            &format!("--{flag}"),
        );
    }
    out
}

/// `cv --local-labels 20:clustered`: how many buildings are known and, when said, how they
/// are drawn (else `--local-draw`).
#[derive(Clone, Copy, Debug)]
pub struct LocalLabels {
    known: Reveal,
    draw: Option<Draw>,
}

impl std::str::FromStr for LocalLabels {
    type Err = Error;
    fn from_str(s: &str) -> Result<LocalLabels> {
        let (known, draw) = roofline::model::anchor::parse_known(s)?;
        Ok(LocalLabels { known, draw })
    }
}

/// `cv --ablate`: one variant, or `all` of them.
#[derive(Clone, Copy, Debug)]
pub enum Ablate {
    /// Every variant.
    All,
    /// One variant.
    One(Variant),
}

impl std::str::FromStr for Ablate {
    type Err = Error;
    fn from_str(s: &str) -> Result<Ablate> {
        if s == "all" {
            Ok(Ablate::All)
        } else {
            Variant::parse(s).map(Ablate::One)
        }
    }
}

/// A library enum offered by name on the command line: the library does not depend on clap,
/// so the names (the ones its files use) and their help are given here.
trait Choice: Copy + Send + Sync + 'static {
    /// Every value, with its name and a line of help.
    const CHOICES: &'static [(Self, &'static str, &'static str)];
}

/// clap's parser for a [`Choice`]: `--help` lists the values with their help.
fn choice<T: Choice>() -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(
        T::CHOICES
            .iter()
            .map(|(_, name, help)| PossibleValue::new(*name).help(*help)),
    )
    .map(|s| {
        T::CHOICES
            .iter()
            .find(|(_, name, _)| *name == s)
            .expect("clap admits only the possible values")
            .0
    })
}

impl Choice for ModelKind {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (
            ModelKind::Gbm,
            "gbm",
            "Histogram gradient boosting (hessboost), with 90 % intervals",
        ),
        (
            ModelKind::Forest,
            "forest",
            "Random forest: bootstrap trees averaged, with out-of-bag error",
        ),
    ];
}

impl Choice for PointLoss {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (PointLoss::Squared, "squared", "Squared error"),
        (
            PointLoss::Huber,
            "huber",
            "Pseudo-Huber with a slope of 1 m: large errors weigh linearly",
        ),
        (
            PointLoss::SquaredLog,
            "squared-log",
            "Squared error of ln(1 + height): errors relative to the height",
        ),
        (
            PointLoss::Gamma,
            "gamma",
            "Gamma deviance with a log link: errors relative to the height",
        ),
    ];
}

impl Choice for IntervalRule {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (
            IntervalRule::Pooled,
            "pooled",
            "Every held-out city weighted equally, one conformal quantile over all scores",
        ),
        (
            IntervalRule::WorstCity,
            "worst-city",
            "Each city's own conformal quantile; the largest wins",
        ),
        (
            IntervalRule::ScaledWorstCity,
            "scaled-worst-city",
            "As worst-city, on scores divided by the quantile spread",
        ),
    ];
}

impl Choice for Stage {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (Stage::Labels, "labels", "The partitions of `labels --job`"),
        (
            Stage::Features,
            "features",
            "The partitions of `features --job`",
        ),
        (
            Stage::Predictions,
            "predictions",
            "The partitions of `predict --job`",
        ),
    ];
}

impl Choice for Draw {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (
            Draw::Spread,
            "spread",
            "Seeded uniformly over the labelled buildings",
        ),
        (
            Draw::Clustered,
            "clustered",
            "The labelled buildings nearest one seeded labelled building",
        ),
    ];
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    init_logging(cli.quiet, cli.verbose);
    // A file-size limit (ulimit -f) or quota then fails the write with an error we report,
    // instead of killing the process mid-file with SIGXFSZ.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to "ignore" before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    // `roofline ... | head`: a closed pipe ends the process quietly, as it does for other
    // Unix tools, instead of a panic in println! reported as an internal error.
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    roofline::io::gdal_setup::init();
    // Trees are trained in parallel and hessboost parallelises inside each one: a worker that
    // waits inside a tree steals another tree and runs it on top of its own stack, so the
    // depth grows with the number of trees in flight. Rayon's default 2 MiB overflowed
    // (a 300-tree forest, leave-one-city-out over four cities); 64 MiB is address space, only
    // touched pages cost memory.
    let mut pool = rayon::ThreadPoolBuilder::new().stack_size(WORKER_STACK_BYTES);
    if let Some(n) = cli.threads {
        pool = pool.num_threads(n.max(1));
    }
    if let Err(e) = pool.build_global() {
        eprintln!("roofline: error: cannot start the worker threads: {e}");
        return 1;
    }
    let progress = Progress::new(cli.quiet);
    install_panic_hook();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli.command, progress))) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("roofline: error: {}", as_flags(&e.to_string()));
            1
        }
        Err(_) => {
            let what = LAST_PANIC
                .lock()
                .ok()
                .and_then(|m| m.clone())
                .unwrap_or_default();
            eprintln!(
                "roofline: error: internal error ({what}) — please report this with the command you ran"
            );
            1
        }
    }
}

/// The message of the last panic, for the one-line report in [`main`].
static LAST_PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Replaces Rust's multi-line panic report by one line printed in [`main`]: a panic is a bug,
/// but the user still gets a single line and exit code 1, and outputs are left as they were
/// (temporary files are removed while unwinding). Set RUST_BACKTRACE to see the full report.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::env::var_os("RUST_BACKTRACE").is_some() {
            default(info);
        }
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(format!(
                "{}{at}",
                payload.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
        }
    }));
}

fn init_logging(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROOFLINE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("roofline={level},gdal={level}"))
    });
    // Colour only on a terminal: a redirected log keeps plain text.
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Runs a command: each command's arguments go to the function that does its work.
fn run(command: Command, progress: Progress) -> Result<()> {
    match command {
        Command::Labels(a) => run_labels(a, progress),
        Command::Features(a) => run_features(a, progress),
        Command::Predict(a) => run_predict(a, progress),
        Command::Plan(a) => plan::plan(&a.city, a.tile_size, a.grid, &a.output),
        Command::Merge(a) => plan::merge(&a.plan, a.stage, &a.output, &a.db.options()),
        Command::Inspect(a) => labels::inspect(&a.configs),
        Command::Report(a) => report::run(&a.cv_dir),
        Command::BenchCity(a) => {
            bench_city::run(&a.dir, &a.data, a.buildings, a.seed, a.tile_size, progress)
        }
        Command::Train(a) => models::train(&a, &Context::new(progress, &a.cache)),
        Command::Cv(a) => models::cv(&a, &Context::new(progress, &a.cache)),
        Command::Demo(a) => demo::run(&a.data, &a.output, &a.models, progress),
        Command::Export(a) => models::export(
            &a.model,
            &a.output,
            a.region.as_deref(),
            &Context::new(progress, &a.cache),
        ),
    }
}

/// Where a stage that a plan job can also run writes: a table of its configs, or a job's
/// partition (clap's `target` group admits exactly one).
enum Target {
    Output(PathBuf),
    Job(PathBuf),
}

impl Target {
    fn of(output: Option<PathBuf>, job: JobArg, configs: usize, db: &TableArgs) -> Result<Target> {
        match (job.job, output) {
            (Some(_), _) if configs > 0 => Err(plan::no_configs_with_job()),
            (Some(j), _) => db.not_with_job().map(|_| Target::Job(j)),
            (None, Some(o)) => Ok(Target::Output(o)),
            (None, None) => Err(roofline::error::Error::invalid(
                "give -o OUTPUT or --job JOB_DIR",
            )),
        }
    }
}

fn run_labels(a: LabelsArgs, progress: Progress) -> Result<()> {
    let configs = usize::from(a.city.is_some());
    match (Target::of(a.output, a.job, configs, &a.db)?, a.city) {
        (Target::Job(j), _) => plan::labels(&j, progress),
        (Target::Output(o), Some(city)) => labels::run(&city, &o, &a.db.options(), progress),
        (Target::Output(_), None) => Err(roofline::error::Error::invalid("give a city config")),
    }
}

fn run_features(a: FeaturesArgs, progress: Progress) -> Result<()> {
    let known = !a.no_known_heights;
    match Target::of(a.output, a.job, a.cities.len(), &a.db)? {
        Target::Job(j) => plan::features(&j, known, progress),
        Target::Output(o) => features::run(&a.cities, &o, &a.db.options(), known, progress),
    }
}

fn run_predict(a: PredictArgs, progress: Progress) -> Result<()> {
    use roofline::io::footprints::KeepColumns;
    let keep = match (&a.keep_columns, a.no_keep) {
        (_, true) => KeepColumns::IdOnly,
        (Some(c), false) => KeepColumns::Only(c.clone()),
        (None, false) => KeepColumns::All,
    };
    match Target::of(a.output.clone(), a.job.clone(), a.regions.len(), &a.db)? {
        Target::Job(j) => plan::predict(&j, &a.model, &keep, &a.local, progress),
        Target::Output(o) => models::predict(&a, &o, &keep, &Context::new(progress, &a.cache)),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own consistency checks of every subcommand (they run only when a subcommand is
    /// parsed, so a broken one would otherwise panic in the field).
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    /// Library messages name parameters; the command line shows its flags instead, and
    /// leaves other backticked words alone.
    #[test]
    fn library_parameters_become_flags() {
        let msg = "`sparse_lidar` and `local_labels` are scenarios of leave-one-city-out (`by` city); try `buffer` 0 or a smaller `block_size`; `no_such_flag` stays";
        assert_eq!(
            super::as_flags(msg),
            "--sparse-lidar and --local-labels are scenarios of leave-one-city-out (--by city); try --buffer 0 or a smaller --block-size; `no_such_flag` stays"
        );
    }

    /// The names offered on the command line are the ones model files and metrics use.
    #[test]
    fn choices_are_named_as_the_library_writes_them() {
        use super::{Choice, Draw, IntervalRule, ModelKind, PointLoss};
        fn check<T: Choice + serde::Serialize>() {
            for (v, name, _) in T::CHOICES {
                assert_eq!(serde_json::to_value(v).unwrap(), *name);
            }
        }
        check::<ModelKind>();
        check::<PointLoss>();
        check::<IntervalRule>();
        check::<Draw>();
    }

    /// A user reading `--help` must learn what every option does.
    #[test]
    fn every_option_is_described() {
        let cmd = super::Cli::command();
        let mut undocumented = Vec::new();
        for sub in cmd.get_subcommands() {
            for a in sub.get_arguments() {
                let id = a.get_id().as_str();
                if id != "help" && id != "version" && a.get_help().is_none() {
                    undocumented.push(format!("{} {id}", sub.get_name()));
                }
            }
        }
        assert!(undocumented.is_empty(), "no description: {undocumented:?}");
    }
}
