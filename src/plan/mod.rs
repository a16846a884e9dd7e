//! Tiled runs: a city cut into jobs that run apart (other processes, other machines) and
//! merge into exactly the table one process would have written.
//!
//! A job *owns* the buildings whose centroid lies in its tile (a LiDAR tile, or a square of a
//! grid when the city has no LiDAR) and *reads* more: every building within [`halo_m`] of an
//! owned one, the whole block (chain of buildings closer than 1 m) of every owned building,
//! the buildings that decide an isolated building's nearest-neighbour distance, and every
//! LiDAR tile that reaches any of them (footprint plus ground ring). Each job computes its
//! stage on all of those and keeps only the owned rows, which therefore equal the whole-city
//! run's rows bit for bit. What depends on the whole city is handled apart:
//!
//! - blocks and nearest neighbours have no bounded reach: the plan follows them on the whole
//!   city and adds what they need to the job;
//! - the local recalibration of `predict` (a linear map and an interval scale fitted on every
//!   measured building of the region) runs in [`merge::merge`], on all jobs' rows together;
//! - `predict --local-labels` and `--sparse-lidar` (seeded choices over the whole survey) are
//!   refused with `--job`.
//!
//! Layout of a plan folder: `plan.json` (the manifest), `jobs/N/job.json` (one per job) and,
//! once jobs have run, `labels|features|predictions/tile=N/part.parquet` (hive-style
//! GeoParquet partitions).

pub mod merge;
pub mod run;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use geo::{Distance, Euclidean};
use serde::{Deserialize, Serialize};

use crate::config::{CityConfig, LabelConfig, LidarLabelConfig};
use crate::error::{AtFile, Error, Result};
use crate::features::context::{self, BoxIndex};
use crate::features::{centroids, neighbours};
use crate::io::output::write_text;
use crate::label::read_city_footprints;

/// The manifest's file name in a plan folder.
pub const PLAN_FILE: &str = "plan.json";
/// A job's file name in its job folder.
pub const JOB_FILE: &str = "job.json";

/// Tile extents closer than this (m) are treated as touching by the LiDAR reader; a job's
/// tiles are chosen with this much slack too.
const TILE_SLACK_M: f64 = 1.0;

/// How far (m) a job reads beyond its owned buildings: the largest radius of anything that
/// looks at other buildings (context counts, 200 m; known-neighbour heights, 250 m; ground
/// borrowed by sparse-LiDAR estimates, 200 m).
pub fn halo_m() -> f64 {
    context::reach_m()
        .max(neighbours::RADII[neighbours::RADII.len() - 1])
        .max(crate::label::sparse::GROUND_RADIUS_M)
}

/// The manifest of a plan (`plan.json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    /// The roofline that wrote the plan.
    pub roofline_version: String,
    /// The city config, absolute.
    pub city: PathBuf,
    /// The city's name (from its config).
    pub city_name: String,
    /// Working CRS of the tile bounds.
    pub crs: String,
    /// How the city was cut.
    pub cut: CutKind,
    /// Grid square side (m) when cut on a grid.
    pub tile_size_m: Option<f64>,
    /// How far (m) beyond its tile a job reads buildings: the largest reach of any feature.
    pub halo_m: f64,
    /// Footprints with a usable polygon, and without one (owned by job 0, written last).
    pub footprints: usize,
    /// Footprints without a usable polygon.
    pub without_geometry: usize,
    /// The jobs, by id.
    pub jobs: Vec<JobSummary>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
/// One job as the manifest lists it.
pub struct JobSummary {
    /// The job's number (its folder `jobs/N`).
    pub id: usize,
    /// The job folder, relative to the plan folder.
    pub path: String,
    /// The tile: xmin, ymin, xmax, ymax in the working CRS.
    pub bounds: [f64; 4],
    /// Buildings the job writes.
    pub owned: usize,
    /// Buildings read (owned plus halo).
    pub read: usize,
    /// Point cloud files the job reads.
    pub lidar_files: usize,
}

/// One job (`jobs/N/job.json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Job {
    /// The job's number.
    pub id: usize,
    /// The city config, absolute.
    pub city: PathBuf,
    /// The tile: xmin, ymin, xmax, ymax in the working CRS.
    pub bounds: [f64; 4],
    /// Positions (in the city's footprint order) of the buildings this job writes.
    pub owned: Vec<usize>,
    /// Positions of the buildings it reads, owned ones included, ascending.
    pub read: Vec<usize>,
    /// The point clouds it reads (`None`: the city has no `[lidar]`).
    pub lidar_files: Option<Vec<PathBuf>>,
    /// Whether this job writes the rows of footprints without a usable polygon.
    pub owns_without_geometry: bool,
    /// The city's counts when planned, to refuse a footprint file changed since.
    pub footprints: usize,
    /// The city's footprints without a usable polygon when planned.
    pub without_geometry: usize,
}

/// The tables a job writes, one partition folder each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// `roofline labels --job`.
    Labels,
    /// `roofline features --job`.
    Features,
    /// `roofline predict --job`.
    Predictions,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 3] = [Stage::Labels, Stage::Features, Stage::Predictions];

    /// The stage's partition folder name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Stage::Labels => "labels",
            Stage::Features => "features",
            Stage::Predictions => "predictions",
        }
    }
}

impl std::str::FromStr for Stage {
    type Err = Error;
    fn from_str(s: &str) -> Result<Stage> {
        Stage::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown stage '{s}' (labels, features or predictions)"
                ))
            })
    }
}

/// `PLAN_DIR/<stage>/tile=N/part.parquet`.
pub fn partition_path(plan_dir: &Path, stage: Stage, job: usize) -> PathBuf {
    plan_dir
        .join(stage.as_str())
        .join(format!("tile={job}"))
        .join("part.parquet")
}

/// What a plan's tiles are: the LiDAR tiles themselves, or squares of a grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CutKind {
    /// One job per LiDAR tile (the default for a city with point clouds).
    LidarTiles,
    /// Squares of `--tile-size` metres.
    Grid,
}

impl CutKind {
    /// The name `plan.json` and messages use.
    pub fn as_str(&self) -> &'static str {
        match self {
            CutKind::LidarTiles => "lidar-tiles",
            CutKind::Grid => "grid",
        }
    }
}

/// How to cut a city.
#[derive(Clone, Copy, Debug)]
pub struct CutOptions {
    /// Grid square size (m) when the city has no LiDAR or `grid` is set.
    pub tile_size_m: f64,
    /// Cut on the grid even when the city has LiDAR tiles.
    pub grid: bool,
}

impl CutOptions {
    /// An error when the cut cannot be made (a tile size that is not a positive number).
    pub fn check(&self) -> Result<()> {
        if !(self.tile_size_m.is_finite() && self.tile_size_m > 0.0) {
            return Err(Error::invalid(format!(
                "`tile_size` must be a positive number of metres, got {}",
                self.tile_size_m
            )));
        }
        Ok(())
    }
}

/// Cuts a city into jobs (see the module documentation).
pub fn make_plan(cfg: &CityConfig, opts: CutOptions) -> Result<(Plan, Vec<Job>)> {
    opts.check()?;
    let city = std::path::absolute(&cfg.path).at(&cfg.path)?;
    let fp = read_city_footprints(cfg)?;
    let n = fp.len();
    let cents = centroids(&fp.geometries);
    let index = BoxIndex::new(&fp.geometries);
    let halo = halo_m();
    let clouds = match &cfg.lidar {
        Some(l) => Some(crate::io::pointcloud::open_point_clouds(l, &fp.crs)?),
        None => None,
    };
    let (cut, cells, owner) = match (&clouds, opts.grid) {
        (Some(clouds), false) => lidar_cells(clouds, &cents),
        _ => grid_cells(&cents, opts.tile_size_m),
    };
    let reach = Reach::new(&fp.geometries, &index, halo);
    let ring = match &cfg.label {
        Some(LabelConfig::Lidar(l)) => l.ring_m,
        _ => 0.0,
    }
    .max(LidarLabelConfig::default().ring_m);
    let mut owned_by: Vec<Vec<usize>> = vec![Vec::new(); cells.len()];
    for (i, &c) in owner.iter().enumerate() {
        owned_by[c].push(i);
    }
    let mut jobs = Vec::new();
    for (cell, owned) in owned_by.into_iter().enumerate() {
        if owned.is_empty() {
            continue;
        }
        let id = jobs.len();
        let read = reach.read_by(&owned);
        let own_tile = (cut == CutKind::LidarTiles).then_some(cell);
        let lidar_files = clouds
            .as_ref()
            .map(|clouds| clouds_reached(clouds, &index, &read, ring, own_tile));
        jobs.push(Job {
            id,
            city: city.clone(),
            bounds: cells[cell],
            owned,
            read,
            lidar_files,
            owns_without_geometry: id == 0,
            footprints: n,
            without_geometry: fp.skipped.len(),
        });
    }
    let plan = Plan {
        roofline_version: env!("CARGO_PKG_VERSION").to_string(),
        city,
        city_name: cfg.name.clone(),
        crs: fp.crs.label.clone(),
        cut,
        tile_size_m: (cut == CutKind::Grid).then_some(opts.tile_size_m),
        halo_m: halo,
        footprints: n,
        without_geometry: fp.skipped.len(),
        jobs: jobs.iter().map(JobSummary::of).collect(),
    };
    Ok((plan, jobs))
}

/// The cells of a cut, and the cell owning each building.
type Cut = (CutKind, Vec<[f64; 4]>, Vec<usize>);

/// The LiDAR tiles as cells, so a job reads its own tile's points and few others.
fn lidar_cells(clouds: &[crate::io::pointcloud::PointCloudFile], cents: &[[f64; 2]]) -> Cut {
    let cells: Vec<[f64; 4]> = clouds
        .iter()
        .map(|c| [c.bounds[0], c.bounds[1], c.bounds[2], c.bounds[3]])
        .collect();
    let owner = cents
        .iter()
        .map(|c| tile_of(&cells, *c))
        .collect::<Vec<_>>();
    (CutKind::LidarTiles, cells, owner)
}

/// Grid squares of side `s` holding a centroid, numbered row by row from the south-west;
/// squares on multiples of `s`, so a plan does not move with the first building.
fn grid_cells(cents: &[[f64; 2]], s: f64) -> Cut {
    let finite = cents.iter().filter(|c| c[0].is_finite());
    let (ox, oy) = finite.fold((f64::INFINITY, f64::INFINITY), |(x, y), c| {
        (x.min(c[0]), y.min(c[1]))
    });
    let (ox, oy) = ((ox / s).floor() * s, (oy / s).floor() * s);
    let key = |c: &[f64; 2]| -> (i64, i64) {
        if c[0].is_finite() {
            (
                ((c[1] - oy) / s).floor() as i64,
                ((c[0] - ox) / s).floor() as i64,
            )
        } else {
            (0, 0)
        }
    };
    let keys: BTreeSet<(i64, i64)> = cents.iter().map(key).collect();
    let number: BTreeMap<(i64, i64), usize> =
        keys.iter().enumerate().map(|(k, key)| (*key, k)).collect();
    let cells = keys
        .iter()
        .map(|(r, c)| {
            let (x0, y0) = (ox + *c as f64 * s, oy + *r as f64 * s);
            [x0, y0, x0 + s, y0 + s]
        })
        .collect();
    let owner = cents.iter().map(|c| number[&key(c)]).collect();
    (CutKind::Grid, cells, owner)
}

/// Whole-city structure the halo cannot bound (blocks and far nearest neighbours), followed
/// on the whole city so each job can read what its owned buildings reach.
struct Reach<'a> {
    geoms: &'a [geo::MultiPolygon<f64>],
    index: &'a BoxIndex,
    halo: f64,
    roots: Vec<usize>,
    blocks: HashMap<usize, Vec<usize>>,
}

impl<'a> Reach<'a> {
    /// Finds the blocks once, for every job.
    fn new(geoms: &'a [geo::MultiPolygon<f64>], index: &'a BoxIndex, halo: f64) -> Self {
        let near = |i: usize, d: f64| index.near(i, d);
        let roots = context::block_roots(geoms, &near);
        let mut blocks: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, r) in roots.iter().enumerate() {
            blocks.entry(*r).or_default().push(i);
        }
        Reach {
            geoms,
            index,
            halo,
            roots,
            blocks,
        }
    }

    /// The buildings a job owning `owned` reads, ascending: the halo, the owned buildings'
    /// blocks and the windows their nearest-neighbour searches open.
    fn read_by(&self, owned: &[usize]) -> Vec<usize> {
        let (index, halo) = (self.index, self.halo);
        let mut read: BTreeSet<usize> = owned.iter().copied().collect();
        let [x0, y0, x1, y1] = bounds_of(index, owned);
        read.extend(index.within([x0 - halo, y0 - halo], [x1 + halo, y1 + halo]));
        for &i in owned {
            read.extend(&self.blocks[&self.roots[i]]);
            // The windows the nearest-neighbour search opens beyond the halo.
            let mut d = context::FIRST_NN_WINDOW_M;
            while d <= context::MAX_NN_SEARCH_M {
                let cand = index.near(i, d);
                let best = cand
                    .iter()
                    .map(|&j| Euclidean.distance(&self.geoms[i], &self.geoms[j]))
                    .fold(f64::INFINITY, f64::min);
                if d > halo {
                    read.extend(&cand);
                }
                if best <= d {
                    break;
                }
                d *= 2.0;
            }
        }
        read.into_iter().collect()
    }
}

/// The point clouds reaching the buildings read (padded by the label's ground ring), and the
/// job's own tile (`own_tile`) even when it lies beyond them.
fn clouds_reached(
    clouds: &[crate::io::pointcloud::PointCloudFile],
    index: &BoxIndex,
    read: &[usize],
    ring: f64,
    own_tile: Option<usize>,
) -> Vec<PathBuf> {
    let [x0, y0, x1, y1] = bounds_of(index, read);
    let pad = ring + TILE_SLACK_M;
    clouds
        .iter()
        .enumerate()
        .filter(|(k, c)| {
            own_tile == Some(*k)
                || !(c.bounds[2] < x0 - pad
                    || c.bounds[0] > x1 + pad
                    || c.bounds[3] < y0 - pad
                    || c.bounds[1] > y1 + pad)
        })
        .map(|(_, c)| c.path.clone())
        .collect::<Vec<_>>()
}

impl JobSummary {
    /// The manifest's line for a job.
    fn of(j: &Job) -> JobSummary {
        JobSummary {
            id: j.id,
            path: format!("jobs/{}", j.id),
            bounds: j.bounds,
            owned: j.owned.len(),
            read: j.read.len(),
            lidar_files: j.lidar_files.as_ref().map_or(0, Vec::len),
        }
    }
}

/// The tile holding a centroid (the first in file order when tiles overlap); a centroid
/// outside every tile goes to the nearest one, a missing one to the first.
fn tile_of(cells: &[[f64; 4]], c: [f64; 2]) -> usize {
    if !c[0].is_finite() {
        return 0;
    }
    let gap = |b: &[f64; 4]| {
        let dx = (b[0] - c[0]).max(c[0] - b[2]).max(0.0);
        let dy = (b[1] - c[1]).max(c[1] - b[3]).max(0.0);
        dx.hypot(dy)
    };
    (0..cells.len())
        .min_by(|&a, &b| gap(&cells[a]).total_cmp(&gap(&cells[b])).then(a.cmp(&b)))
        .unwrap_or(0)
}

fn bounds_of(index: &BoxIndex, rows: &[usize]) -> [f64; 4] {
    rows.iter().fold(
        [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ],
        |a, &i| {
            let b = &index.boxes[i];
            [
                a[0].min(b.lower()[0]),
                a[1].min(b.lower()[1]),
                a[2].max(b.upper()[0]),
                a[3].max(b.upper()[1]),
            ]
        },
    )
}

/// Writes a plan folder; refuses one that already holds files (old partitions would mix in).
pub fn write_plan(dir: &Path, plan: &Plan, jobs: &[Job]) -> Result<()> {
    if dir.exists() {
        let used = std::fs::read_dir(dir).at(dir)?.next().is_some();
        if used {
            return Err(Error::file(
                dir,
                "is not empty: a plan needs a folder of its own (old partitions would be merged in)",
            ));
        }
    }
    for j in jobs {
        let jd = dir.join("jobs").join(j.id.to_string());
        std::fs::create_dir_all(&jd)
            .map_err(|e| Error::file(&jd, format!("cannot create: {e}")))?;
        let text = serde_json::to_string(j).map_err(Error::invalid)?;
        write_text(&jd.join(JOB_FILE), &text)?;
    }
    // The manifest last: a plan folder with a manifest is complete.
    let text = serde_json::to_string_pretty(plan).map_err(Error::invalid)?;
    write_text(&dir.join(PLAN_FILE), &text)
}

/// A plan's JSON file; an unreadable one says `hint` (the likely mistake), a malformed one
/// says it is not a `what`.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path, hint: &str, what: &str) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::file(path, format!("cannot read ({e}) — {hint}")))?;
    serde_json::from_str(&text).map_err(|e| Error::file(path, format!("not a {what}: {e}")))
}

impl Plan {
    /// Reads a plan folder's manifest.
    pub fn load(dir: &Path) -> Result<Plan> {
        read_json(
            &dir.join(PLAN_FILE),
            "is this a folder made by `roofline plan`?",
            "plan",
        )
    }
}

impl Job {
    /// Reads `JOB_DIR/job.json`; returns the job and its plan folder (`JOB_DIR/../..`).
    pub fn load(job_dir: &Path) -> Result<(Job, PathBuf)> {
        let job: Job = read_json(
            &job_dir.join(JOB_FILE),
            "`job` takes a job folder such as PLAN_DIR/jobs/0",
            "job",
        )?;
        let plan_dir = std::path::absolute(job_dir)
            .at(job_dir)?
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .ok_or_else(|| Error::file(job_dir, "is not inside a plan folder"))?;
        Ok((job, plan_dir))
    }
}
