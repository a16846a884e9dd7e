//! A large benchmark city tiled from the shipped real data: copies of the Delft (AHN3, 14.6
//! pts/m²) and Amsterdam (AHN3 thinned, 0.7 pts/m²) surveys and their footprints, shifted onto
//! a grid of cells, ids made unique, the source of each cell drawn from a seed. The points are
//! cut into square LAZ tiles on a grid that does not follow the cells, so buildings straddle
//! tile edges as they do in a national survey. For benchmarks only: the repeated patches are
//! real measurements, but the city they form is not a real place.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use geo::{BoundingRect, MultiPolygon, Translate};
use rayon::prelude::*;

use crate::config::CityConfig;
use crate::crs::Crs;
use crate::error::{AtFile, Error, Result};
use crate::io::footprints::{read_footprints, Request};
use crate::io::table::{Column, Table};
use crate::progress::Progress;
use crate::stats::seeded::{mix, unit};

/// The shipped cities the benchmark city is tiled from (paths under the data folder).
pub const SOURCES: [&str; 2] = ["cities/delft-3dfier.toml", "cities/amsterdam-centre.toml"];
/// EPSG code of both sources (RD New) and of the city.
const EPSG: u32 = 28992;
/// Share of cells filled with the dense Delft survey: about 700 points per building overall.
const DENSE_SHARE: f64 = 0.12;
/// South-west corner of the city: half a tile off the tile grid so cells straddle tile edges.
const ORIGIN: (f64, f64) = (100_500.0, 430_500.0);

/// What `bench-city` writes.
#[derive(Clone, Debug)]
pub struct BenchCityOptions {
    /// Buildings in the city (exactly).
    pub buildings: usize,
    /// Seed of the arrangement of source patches.
    pub seed: u64,
    /// Side of a LAZ tile (m).
    pub tile_m: f64,
    /// Also write every point into one `merged.laz` (for checking that tiling changes nothing).
    pub merged: bool,
}

impl Default for BenchCityOptions {
    fn default() -> Self {
        BenchCityOptions {
            buildings: 10_000,
            seed: 42,
            tile_m: 1000.0,
            merged: false,
        }
    }
}

/// What a benchmark city holds.
#[derive(Clone, Debug)]
pub struct BenchCitySummary {
    /// Buildings written.
    pub buildings: usize,
    /// LiDAR points written over all tiles.
    pub points: u64,
    /// LAZ tiles written.
    pub tiles: usize,
    /// Grid cells, each a shifted copy of a source patch.
    pub cells: usize,
    /// Extent of the footprints: min x, min y, max x, max y (EPSG:28992).
    pub extent: [f64; 4],
    /// The city config written (`DIR/city.toml`).
    pub config: PathBuf,
}

/// One source survey: its footprints inside the survey's extent and all its points.
struct Patch {
    name: String,
    ids: Vec<String>,
    geometries: Vec<MultiPolygon<f64>>,
    points: Vec<las::Point>,
    /// Integer-metre extent of the points: min x, min y, width, height.
    origin: (f64, f64),
    size: (f64, f64),
}

/// One copy of a patch, shifted by whole metres (so shifted coordinates stay exact at the
/// millimetre scale of the LAZ files).
struct Placement {
    patch: usize,
    shift: (f64, f64),
}

/// Writes the city into `dir`: `tiles/*.laz`, `footprints.gpkg` and `city.toml` (written
/// last, so a config exists only for a complete city).
pub fn build_bench_city(
    data: &Path,
    dir: &Path,
    opts: &BenchCityOptions,
    progress: &Progress,
) -> Result<BenchCitySummary> {
    if opts.buildings == 0 {
        return Err(Error::invalid("`buildings` must be at least 1"));
    }
    if opts.tile_m.is_nan() || opts.tile_m < 10.0 {
        return Err(Error::invalid("tile size must be at least 10 m"));
    }
    let patches = SOURCES
        .iter()
        .map(|s| load_patch(&data.join(s)))
        .collect::<Result<Vec<_>>>()?;
    let (placements, cells, cell) = arrange(&patches, opts);

    std::fs::create_dir_all(dir.join("tiles")).at(dir)?;
    let crs = Crs::from_epsg(EPSG)?;

    // Footprints: every placement's buildings in placement order, cut to exactly N.
    let mut ids = Vec::with_capacity(opts.buildings);
    let mut geoms = Vec::with_capacity(opts.buildings);
    'fill: for (k, p) in placements.iter().enumerate() {
        let patch = &patches[p.patch];
        for (id, g) in patch.ids.iter().zip(&patch.geometries) {
            if ids.len() == opts.buildings {
                break 'fill;
            }
            ids.push(format!("{}-{k}-{id}", patch.name));
            geoms.push(g.translate(p.shift.0, p.shift.1));
        }
    }
    let extent = crate::io::pointcloud::footprints_bbox(&geoms);
    let mut table = Table {
        geometry: Some(geoms),
        crs: Some(crs),
        ..Default::default()
    };
    table.push(Column::str("id", ids));
    let footprints = dir.join("footprints.gpkg");
    crate::io::output::write_table(&table, &footprints)?;

    // Tiles: the grid cells of `tile_m` that placements reach, written in parallel.
    let t = opts.tile_m;
    let (mut tx0, mut ty0, mut tx1, mut ty1) = (i64::MAX, i64::MAX, i64::MIN, i64::MIN);
    let rects: Vec<[f64; 4]> = placements
        .iter()
        .map(|p| {
            let s = &patches[p.patch];
            let (x, y) = (s.origin.0 + p.shift.0, s.origin.1 + p.shift.1);
            [x, y, x + s.size.0, y + s.size.1]
        })
        .collect();
    for r in &rects {
        tx0 = tx0.min((r[0] / t).floor() as i64);
        ty0 = ty0.min((r[1] / t).floor() as i64);
        tx1 = tx1.max((r[2] / t).floor() as i64);
        ty1 = ty1.max((r[3] / t).floor() as i64);
    }
    let tiles: Vec<(i64, i64)> = (ty0..=ty1)
        .flat_map(|ty| (tx0..=tx1).map(move |tx| (tx, ty)))
        .collect();
    let total: u64 = placements
        .iter()
        .map(|p| patches[p.patch].points.len() as u64)
        .sum();
    let bar = progress.bar(total, "bench-city", "points");
    let written: Vec<u64> = tiles
        .par_iter()
        .map(|&(tx, ty)| {
            let b = [
                tx as f64 * t,
                ty as f64 * t,
                (tx + 1) as f64 * t,
                (ty + 1) as f64 * t,
            ];
            let mut points = tile_points(&patches, &placements, &rects, b, t, (tx, ty)).peekable();
            if points.peek().is_none() {
                return Ok(0);
            }
            let path = dir.join("tiles").join(format!("t_{tx}_{ty}.laz"));
            let n = write_laz(&path, points, false)?;
            bar.inc(n);
            Ok(n)
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    let points: u64 = written.iter().sum();
    if opts.merged {
        let all = tiles.iter().flat_map(|&(tx, ty)| {
            let b = [
                tx as f64 * t,
                ty as f64 * t,
                (tx + 1) as f64 * t,
                (ty + 1) as f64 * t,
            ];
            tile_points(&patches, &placements, &rects, b, t, (tx, ty)).collect::<Vec<_>>()
        });
        write_laz(&dir.join("merged.laz"), all, true)?;
    }

    let config = dir.join("city.toml");
    let toml = format!(
        "# Benchmark city tiled from real data (Delft and Amsterdam AHN3 with their footprints,\n\
         # shifted on a grid of {cw:.0} m x {ch:.0} m cells; seed {seed}). For benchmarks only:\n\
         # not a real place. Written by `roofline bench-city`.\n\
         name = \"bench-city-{n}\"\n\n\
         [footprints]\npath = \"footprints.gpkg\"\nlayer = \"footprints\"\nid = \"id\"\n\n\
         [lidar]\npaths = [\"tiles/*.laz\"]\ncrs = \"EPSG:{EPSG}\"   # the tiles carry no CRS record\n\n\
         [label]\nsource = \"lidar\"\n",
        cw = cell.0,
        ch = cell.1,
        seed = opts.seed,
        n = opts.buildings,
    );
    crate::io::output::write_text(&config, &toml)?;
    Ok(BenchCitySummary {
        buildings: table.n_rows(),
        points,
        tiles: written.iter().filter(|&&n| n > 0).count(),
        cells,
        extent,
        config,
    })
}

/// Reads one shipped city: footprints lying wholly inside its survey's extent, and every point.
fn load_patch(config: &Path) -> Result<Patch> {
    let cfg = CityConfig::load(config)?;
    let fcfg = cfg.require_footprints()?;
    let lidar = cfg
        .lidar
        .as_ref()
        .ok_or_else(|| Error::file(config, "has no [lidar] section"))?;
    let fp = read_footprints(fcfg, cfg.working_crs.as_ref(), &Request::default())?;
    if fp.crs.epsg() != Some(EPSG) {
        return Err(Error::file(config, format!("is not in EPSG:{EPSG}")));
    }
    let mut points = Vec::new();
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for f in &lidar.files {
        let mut reader = las::Reader::from_path(f)
            .map_err(|e| Error::file(f, format!("not a readable LAS/LAZ file: {e}")))?;
        let data = reader
            .read_all()
            .map_err(|e| Error::file(f, format!("cannot read points: {e}")))?;
        for p in data.points() {
            let p = p.map_err(|e| Error::file(f, format!("cannot read points: {e}")))?;
            x0 = x0.min(p.x);
            y0 = y0.min(p.y);
            x1 = x1.max(p.x);
            y1 = y1.max(p.y);
            points.push(p);
        }
    }
    let (mut ids, mut geometries) = (Vec::new(), Vec::new());
    for (id, g) in fp.ids.iter().zip(&fp.geometries) {
        let Some(r) = g.bounding_rect() else { continue };
        if r.min().x >= x0 && r.min().y >= y0 && r.max().x <= x1 && r.max().y <= y1 {
            ids.push(id.clone());
            geometries.push(g.clone());
        }
    }
    let origin = (x0.floor(), y0.floor());
    Ok(Patch {
        name: cfg.name.clone(),
        ids,
        geometries,
        points,
        origin,
        size: (x1.ceil() - origin.0, y1.ceil() - origin.1),
    })
}

/// Fills cells (row by row on a near-square grid) until they hold the buildings asked for.
/// Every cell has the size of the largest patch; a smaller patch is repeated to fill it.
/// Returns the placements, the number of cells and the cell size.
fn arrange(patches: &[Patch], opts: &BenchCityOptions) -> (Vec<Placement>, usize, (f64, f64)) {
    let cw = patches.iter().map(|p| p.size.0).fold(0.0, f64::max) + 10.0;
    let ch = patches.iter().map(|p| p.size.1).fold(0.0, f64::max) + 10.0;
    let copies = |p: &Patch| {
        (
            (cw / p.size.0).floor().max(1.0),
            (ch / p.size.1).floor().max(1.0),
        )
    };
    let per_cell = |i: usize| {
        let (a, b) = copies(&patches[i]);
        patches[i].ids.len() as f64 * a * b
    };
    let mean = DENSE_SHARE * per_cell(0) + (1.0 - DENSE_SHARE) * per_cell(1);
    let expect = (opts.buildings as f64 / mean.max(1.0)).ceil().max(1.0);
    let columns = (expect * ch / cw).sqrt().ceil().max(1.0) as usize;
    let mut placements = Vec::new();
    let (mut buildings, mut cells) = (0usize, 0usize);
    while buildings < opts.buildings {
        let (col, row) = (cells % columns, cells / columns);
        let patch = usize::from(unit(mix(opts.seed, cells as u64, 0)) >= DENSE_SHARE);
        let p = &patches[patch];
        let (a, b) = copies(p);
        for j in 0..b as usize {
            for i in 0..a as usize {
                let x = ORIGIN.0 + col as f64 * cw + i as f64 * p.size.0;
                let y = ORIGIN.1 + row as f64 * ch + j as f64 * p.size.1;
                placements.push(Placement {
                    patch,
                    shift: (x - p.origin.0, y - p.origin.1),
                });
                buildings += p.ids.len();
            }
        }
        cells += 1;
    }
    (placements, cells, (cw, ch))
}

/// The points of tile `(tx, ty)` (bounds `b`), in placement then source order, streamed.
fn tile_points<'a>(
    patches: &'a [Patch],
    placements: &'a [Placement],
    rects: &'a [[f64; 4]],
    b: [f64; 4],
    t: f64,
    (tx, ty): (i64, i64),
) -> impl Iterator<Item = las::Point> + 'a {
    placements
        .iter()
        .zip(rects)
        .filter(move |(_, r)| !(r[2] < b[0] || r[0] > b[2] || r[3] < b[1] || r[1] > b[3]))
        .flat_map(move |(p, _)| {
            patches[p.patch].points.iter().filter_map(move |src| {
                let (x, y) = (src.x + p.shift.0, src.y + p.shift.1);
                ((x / t).floor() as i64 == tx && (y / t).floor() as i64 == ty).then(|| {
                    let mut q = src.clone();
                    q.x = x;
                    q.y = y;
                    q
                })
            })
        })
}

/// Writes points as LAS 1.2 point format 1, millimetre scale, no CRS record; atomically.
/// Returns the number of points written.
fn write_laz(path: &Path, points: impl Iterator<Item = las::Point>, parallel: bool) -> Result<u64> {
    let tmp = path.with_extension("laz.tmp");
    let result = (|| -> std::result::Result<u64, las::Error> {
        let mut b = las::Builder::from((1, 2));
        b.point_format = las::point::Format::new(1)?;
        b.point_format.is_compressed = true;
        b.generating_software = "roofline bench-city".into();
        let scale = las::Transform {
            scale: 0.001,
            offset: 0.0,
        };
        b.transforms = las::Vector {
            x: scale,
            y: scale,
            z: scale,
        };
        let header = b.into_header()?;
        let file = File::create(&tmp)?;
        let parallelism = if parallel {
            las::LazParallelism::Yes
        } else {
            las::LazParallelism::No
        };
        let options = las::WriterOptions::default().with_laz_parallelism(parallelism);
        let mut w = las::Writer::with_options(BufWriter::new(file), header, options)?;
        let mut n = 0u64;
        for p in points {
            w.write_point(p)?;
            n += 1;
        }
        w.close()?;
        Ok(n)
    })();
    match result {
        Ok(n) => {
            std::fs::rename(&tmp, path)
                .map_err(|e| Error::file(path, format!("cannot write: {e}")))?;
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(Error::file(path, format!("cannot write: {e}")))
        }
    }
}
