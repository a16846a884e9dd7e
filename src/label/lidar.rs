//! Heights from LiDAR: per building, the roof statistic of roof-class points inside the
//! footprint minus the ground statistic of ground-class points within a ring around it.
//!
//! Points are streamed tile by tile. Each footprint knows how many tiles can reach it; once all
//! of them are read its points are reduced to statistics and freed, so memory follows the
//! buildings currently being measured, not the size of the city.

use std::collections::HashSet;
use std::sync::mpsc;
use std::time::Instant;

use geo::{
    Area, BooleanOps, BoundingRect, Contains, Distance, Euclidean, Intersects, LinesIter,
    MultiPolygon, Point, Rect,
};
use rayon::prelude::*;
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, AABB};

use crate::config::{LidarLabelConfig, Statistic};
use crate::error::Result;
use crate::io::footprints::Footprints;
use crate::io::pointcloud::{PointChunk, PointCloudFile};
use crate::label::sparsify::SparsifyPlan;
use crate::label::{Flag, LabelRow, LidarStats, Origin};
use crate::progress::Progress;

/// Tile extents closer than this (m) are treated as touching: neighbouring tiles' point
/// extents leave hairline gaps (4 mm in Amsterdam's AHN3 crop).
const TILE_GAP_TOLERANCE_M: f64 = 0.5;
const CHUNK_POINTS: usize = 1 << 20;
const SUB_CHUNK: usize = 1 << 14;

/// What a LiDAR labelling pass returns.
pub struct LidarOutput {
    /// One label per footprint, in footprint order.
    pub rows: Vec<LabelRow>,
    /// Points read from every file (after thinning, when a plan thins them).
    pub points_read: u64,
    /// Wall-clock time of the pass, for throughput messages.
    pub seconds: f64,
}

/// Points gathered for one building until all tiles that reach it are read.
#[derive(Default)]
struct Accumulator {
    roof: Vec<f64>,
    ground: Vec<f64>,
    /// 1 m cells (packed) holding roof points.
    cells: Vec<u64>,
    pending_tiles: u32,
}

#[derive(Clone, Copy)]
enum Hit {
    Roof { b: u32, z: f64, cell: u64 },
    Ground { b: u32, z: f64 },
}

/// LiDAR labels for every footprint under `def`, streaming each file of `clouds` once
/// (opened with [`crate::io::pointcloud::open_point_clouds`] in the footprints' CRS). Heights
/// are roof minus ground in metres, flagged per [`Flag`]; the result does not depend on the
/// thread count.
pub fn lidar_labels(
    fp: &Footprints,
    clouds: &[PointCloudFile],
    def: &LidarLabelConfig,
    progress: &Progress,
) -> Result<LidarOutput> {
    lidar_labels_filtered(fp, clouds, def, None, progress)
}

/// [`lidar_labels`] on the points a [`SparsifyPlan`] keeps (a sparse-survey scenario);
/// `points_read` then counts the kept points.
pub fn lidar_labels_filtered(
    fp: &Footprints,
    clouds: &[PointCloudFile],
    def: &LidarLabelConfig,
    filter: Option<&SparsifyPlan>,
    progress: &Progress,
) -> Result<LidarOutput> {
    let start = Instant::now();
    let index = FootprintIndex::new(fp, def);
    let order = reading_order(clouds);
    let mut state = Labelling::new(&index, clouds, def);
    let total: u64 = clouds.iter().map(|c| c.points).sum();
    let bar = progress.bar(total, "labels", "points");
    // A reader thread decodes the tiles (in `order`) while this thread assigns the points of
    // the chunk before: decoding and assignment overlap, and the bounded channel keeps at most
    // a few chunks in memory. Chunks go back to the reader to be refilled.
    let (to_assign, decoded_chunks) = mpsc::sync_channel::<Result<Decoded>>(2);
    let (to_reader, spent_chunks) = mpsc::channel::<PointChunk>();
    let working = &fp.crs;
    let order = &order;
    std::thread::scope(|scope| -> Result<()> {
        scope.spawn(move || read_tiles(clouds, order, working, &to_assign, &spent_chunks));
        // Owned here so that leaving early (an error, a panic) unblocks the reader.
        let decoded_chunks = decoded_chunks;
        for msg in decoded_chunks.iter() {
            match msg? {
                Decoded::Points {
                    tile,
                    mut chunk,
                    first_index,
                } => {
                    let decoded = chunk.len() as u64;
                    if let Some(plan) = filter {
                        chunk.retain(|k, x, y, class| {
                            plan.keep(tile, first_index + k as u64, x, y, class)
                        });
                    }
                    state.assign(&chunk);
                    bar.inc(decoded);
                    // The reader may have finished already; then the buffer is simply dropped.
                    let _ = to_reader.send(chunk);
                }
                Decoded::TileEnd(tile) => state.tile_done(tile),
            }
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    let points_read = state.points_read;
    Ok(LidarOutput {
        rows: state.into_rows(),
        points_read,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Tiles in spatial order (rows of tiles, south to north), so that buildings complete, and
/// free their points, early.
fn reading_order(clouds: &[PointCloudFile]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..clouds.len()).collect();
    order.sort_by(|&a, &b| {
        let (ba, bb) = (clouds[a].bounds, clouds[b].bounds);
        (ba[1], ba[0])
            .partial_cmp(&(bb[1], bb[0]))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    order
}

/// A tile's header extent, widened by [`TILE_GAP_TOLERANCE_M`].
fn tile_envelope(c: &PointCloudFile) -> AABB<[f64; 2]> {
    let t = TILE_GAP_TOLERANCE_M;
    AABB::from_corners(
        [c.bounds[0] - t, c.bounds[1] - t],
        [c.bounds[2] + t, c.bounds[3] + t],
    )
}

/// Side (m) of the square cells whose candidate footprints [`FootprintIndex::classify`]
/// caches. Points arrive in scan order, so dozens in a row fall in one cell and share one
/// R-tree query; small enough that a cell in a dense centre has only a handful of candidates.
const CELL_M: f64 = 16.0;

/// The footprints, indexed for assigning points: an R-tree of their boxes widened by the
/// ground ring, and the plain boxes for a cheap test before the exact ones.
struct FootprintIndex<'a> {
    fp: &'a Footprints,
    tree: RTree<GeomWithData<Rectangle<[f64; 2]>, u32>>,
    boxes: Vec<Rect<f64>>,
    ring: f64,
    roof_class: [bool; 256],
    ground_class: [bool; 256],
}

impl<'a> FootprintIndex<'a> {
    fn new(fp: &'a Footprints, def: &LidarLabelConfig) -> Self {
        let ring = def.ring_m;
        let boxes: Vec<Rect<f64>> = fp
            .geometries
            .iter()
            .map(|g| g.bounding_rect().expect("footprints are non-empty"))
            .collect();
        let widened = boxes.iter().enumerate().map(|(i, r)| {
            GeomWithData::new(
                Rectangle::from_corners(
                    [r.min().x - ring, r.min().y - ring],
                    [r.max().x + ring, r.max().y + ring],
                ),
                i as u32,
            )
        });
        FootprintIndex {
            fp,
            tree: RTree::bulk_load(widened.collect()),
            boxes,
            ring,
            roof_class: class_mask(&def.roof_classes),
            ground_class: class_mask(&def.ground_classes),
        }
    }

    /// Footprints whose widened box meets a tile's extent.
    fn near_tile(&self, c: &PointCloudFile) -> impl Iterator<Item = usize> + '_ {
        self.tree
            .locate_in_envelope_intersecting(&tile_envelope(c))
            .map(|i| i.data as usize)
    }

    /// The roof and ground hits of the points `range` of `chunk`, in point order.
    fn classify(&self, chunk: &PointChunk, range: std::ops::Range<usize>) -> Vec<Hit> {
        let mut out = Vec::new();
        let mut cell = (i64::MIN, i64::MIN);
        let mut candidates: Vec<u32> = Vec::new();
        let ring2 = self.ring * self.ring;
        for i in range {
            let c = chunk.class[i] as usize;
            let (is_roof, is_ground) = (self.roof_class[c], self.ground_class[c]);
            if !is_roof && !is_ground {
                continue;
            }
            let (x, y, z) = (chunk.x[i], chunk.y[i], chunk.z[i]);
            let here = ((x / CELL_M).floor() as i64, (y / CELL_M).floor() as i64);
            if here != cell {
                cell = here;
                candidates.clear();
                let (x0, y0) = (here.0 as f64 * CELL_M, here.1 as f64 * CELL_M);
                let env = AABB::from_corners([x0, y0], [x0 + CELL_M, y0 + CELL_M]);
                candidates.extend(
                    self.tree
                        .locate_in_envelope_intersecting(&env)
                        .map(|item| item.data),
                );
            }
            let p = Point::new(x, y);
            for &b in &candidates {
                let r = &self.boxes[b as usize];
                let (dx, dy) = (
                    (r.min().x - x).max(x - r.max().x).max(0.0),
                    (r.min().y - y).max(y - r.max().y).max(0.0),
                );
                let g = &self.fp.geometries[b as usize];
                if is_roof && dx == 0.0 && dy == 0.0 && g.contains(&p) {
                    out.push(Hit::Roof {
                        b,
                        z,
                        cell: cell_key(x, y),
                    });
                }
                if is_ground && dx * dx + dy * dy <= ring2 && within(g, &p, self.ring) {
                    out.push(Hit::Ground { b, z });
                }
            }
        }
        out
    }
}

/// Whether `p` lies within `ring` metres of the polygon (inside counts): the same decision as
/// `Euclidean.distance(g, p) <= ring`, but it stops at the first close edge instead of
/// measuring every edge and testing containment first, as the general distance must.
fn within(g: &MultiPolygon<f64>, p: &Point<f64>, ring: f64) -> bool {
    g.lines_iter()
        .any(|line| Euclidean.distance(p, &line) <= ring)
        || g.intersects(p)
}

/// Points gathered per building, and the labels of buildings whose tiles are all read.
struct Labelling<'a> {
    index: &'a FootprintIndex<'a>,
    clouds: &'a [PointCloudFile],
    def: &'a LidarLabelConfig,
    acc: Vec<Accumulator>,
    share: Vec<f64>,
    rows: Vec<Option<LabelRow>>,
    points_read: u64,
}

impl<'a> Labelling<'a> {
    fn new(
        index: &'a FootprintIndex<'a>,
        clouds: &'a [PointCloudFile],
        def: &'a LidarLabelConfig,
    ) -> Self {
        let n = index.fp.len();
        let mut acc: Vec<Accumulator> = (0..n).map(|_| Accumulator::default()).collect();
        for c in clouds {
            for b in index.near_tile(c) {
                acc[b].pending_tiles += 1;
            }
        }
        Labelling {
            index,
            clouds,
            def,
            acc,
            share: lidar_share(index.fp, &index.boxes, clouds),
            rows: vec![None; n],
            points_read: 0,
        }
    }

    /// Classifies a chunk's points in parallel slices and files the hits per building.
    fn assign(&mut self, chunk: &PointChunk) {
        let index = self.index;
        let hits: Vec<Vec<Hit>> = (0..chunk.len())
            .into_par_iter()
            .step_by(SUB_CHUNK)
            .map(|s| index.classify(chunk, s..(s + SUB_CHUNK).min(chunk.len())))
            .collect();
        for hit in hits.into_iter().flatten() {
            match hit {
                Hit::Roof { b, z, cell } => {
                    let a = &mut self.acc[b as usize];
                    a.roof.push(z);
                    a.cells.push(cell);
                }
                Hit::Ground { b, z } => self.acc[b as usize].ground.push(z),
            }
        }
        self.points_read += chunk.len() as u64;
    }

    /// Buildings this was the last tile of: reduced to statistics, their points freed.
    fn tile_done(&mut self, tile: usize) {
        let acc = &mut self.acc;
        let taken: Vec<(usize, Accumulator)> = self
            .index
            .near_tile(&self.clouds[tile])
            .filter_map(|b| {
                acc[b].pending_tiles -= 1;
                (acc[b].pending_tiles == 0).then(|| (b, std::mem::take(&mut acc[b])))
            })
            .collect();
        let (fp, share, def) = (self.index.fp, &self.share, self.def);
        let finished: Vec<(usize, LabelRow)> = taken
            .into_par_iter()
            .map(|(b, a)| (b, finish(b, a, fp, share[b], def)))
            .collect();
        for (b, row) in finished {
            self.rows[b] = Some(row);
        }
    }

    /// One row per footprint; footprints no tile reaches get theirs here.
    fn into_rows(self) -> Vec<LabelRow> {
        let (fp, share, def) = (self.index.fp, &self.share, self.def);
        self.rows
            .into_iter()
            .enumerate()
            .map(|(b, r)| r.unwrap_or_else(|| finish(b, Accumulator::default(), fp, share[b], def)))
            .collect()
    }
}

/// What the reader thread hands to the assigning thread, in reading order.
enum Decoded {
    Points {
        tile: usize,
        chunk: PointChunk,
        /// Index in its file of the chunk's first point.
        first_index: u64,
    },
    /// Every point of this tile has been sent.
    TileEnd(usize),
}

/// Decodes the tiles in `order`, chunk by chunk, into `out`; refills buffers sent back on
/// `spent`. Stops at the first error (sent on) or when the receiver is gone.
fn read_tiles(
    clouds: &[PointCloudFile],
    order: &[usize],
    working: &crate::crs::Crs,
    out: &mpsc::SyncSender<Result<Decoded>>,
    spent: &mpsc::Receiver<PointChunk>,
) {
    for &tile in order {
        let mut stream = match clouds[tile].stream(working, CHUNK_POINTS) {
            Ok(s) => s,
            Err(e) => {
                let _ = out.send(Err(e));
                return;
            }
        };
        let mut first_index = 0u64;
        loop {
            let mut chunk = spent.try_recv().unwrap_or_default();
            match stream.next_chunk(&mut chunk) {
                Ok(true) => {
                    let n = chunk.len() as u64;
                    let msg = Decoded::Points {
                        tile,
                        chunk,
                        first_index,
                    };
                    if out.send(Ok(msg)).is_err() {
                        return;
                    }
                    first_index += n;
                }
                Ok(false) => break,
                Err(e) => {
                    let _ = out.send(Err(e));
                    return;
                }
            }
        }
        if out.send(Ok(Decoded::TileEnd(tile))).is_err() {
            return;
        }
    }
}

fn class_mask(classes: &[u8]) -> [bool; 256] {
    let mut m = [false; 256];
    for &c in classes {
        m[c as usize] = true;
    }
    m
}

fn cell_key(x: f64, y: f64) -> u64 {
    let cx = x.floor() as i64 as i32 as u32 as u64;
    let cy = y.floor() as i64 as i32 as u32 as u64;
    (cx << 32) | cy
}

/// Share of each footprint's area inside the union of the tiles' header extents.
fn lidar_share(fp: &Footprints, boxes: &[Rect<f64>], clouds: &[PointCloudFile]) -> Vec<f64> {
    let t = TILE_GAP_TOLERANCE_M;
    let rects: Vec<Rect<f64>> = clouds
        .iter()
        .map(|c| {
            Rect::new(
                (c.bounds[0] - t, c.bounds[1] - t),
                (c.bounds[2] + t, c.bounds[3] + t),
            )
        })
        .collect();
    // The union of only the tiles that reach a footprint: the share then depends on those
    // tiles alone, so a tiled run that opens a subset of the survey measures it bit for bit
    // as the whole-city run does (boolean operations round to a grid set by their inputs).
    let union_near = |b: &Rect<f64>| {
        rects
            .iter()
            .filter(|r| {
                !(r.max().x < b.min().x
                    || r.min().x > b.max().x
                    || r.max().y < b.min().y
                    || r.min().y > b.max().y)
            })
            .fold(MultiPolygon::<f64>::new(vec![]), |u, r| {
                u.union(&MultiPolygon::new(vec![r.to_polygon()]))
            })
    };
    let contains_box = |b: &Rect<f64>| {
        rects.iter().any(|r| {
            r.min().x <= b.min().x
                && r.min().y <= b.min().y
                && r.max().x >= b.max().x
                && r.max().y >= b.max().y
        })
    };
    let disjoint = |b: &Rect<f64>| {
        rects.iter().all(|r| {
            r.max().x < b.min().x
                || r.min().x > b.max().x
                || r.max().y < b.min().y
                || r.min().y > b.max().y
        })
    };
    fp.geometries
        .par_iter()
        .zip(boxes.par_iter())
        .map(|(g, b)| {
            if contains_box(b) {
                1.0
            } else if disjoint(b) {
                0.0
            } else {
                let area = g.unsigned_area();
                if area <= 0.0 {
                    0.0
                } else {
                    (g.intersection(&union_near(b)).unsigned_area() / area).clamp(0.0, 1.0)
                }
            }
        })
        .collect()
}

fn finish(
    b: usize,
    mut a: Accumulator,
    fp: &Footprints,
    lidar_share: f64,
    def: &LidarLabelConfig,
) -> LabelRow {
    let g = &fp.geometries[b];
    let area = g.unsigned_area();
    // Selection, not sorting: the same values bit for bit, in linear time.
    let roof_m = def.roof.of_unsorted(&mut a.roof);
    let ground_m = def.ground.of_unsorted(&mut a.ground);
    let mut pct = |p: f64| {
        (!a.roof.is_empty()).then(|| crate::stats::percentile::percentile_select(&mut a.roof, p))
    };
    let (roof_p50_m, roof_p90_m) = (pct(50.0), pct(90.0));
    let stats = LidarStats {
        roof_m,
        ground_m,
        roof_p50_m,
        roof_p90_m,
        roof_max_m: Statistic::Max.of_unsorted(&mut a.roof),
        roof_points: a.roof.len() as u64,
        roof_density: if area > 0.0 {
            a.roof.len() as f64 / area
        } else {
            0.0
        },
        coverage: coverage(g, &mut a.cells),
        ground_points: a.ground.len() as u64,
        lidar_share,
    };
    let flag = if lidar_share < def.min_lidar_share {
        Flag::OutsideLidar
    } else if a.roof.is_empty() {
        Flag::NoRoofPoints
    } else if a.ground.is_empty() {
        Flag::NoGround
    } else if a.roof.len() < def.min_roof_points {
        Flag::Sparse
    } else {
        Flag::Ok
    };
    let height_m = match (roof_m, ground_m) {
        (Some(r), Some(gr)) => Some(r - gr),
        _ => None,
    };
    LabelRow {
        id: fp.ids[b].clone(),
        height_m,
        flag,
        lidar: Some(stats),
        origin: Origin::Measured,
    }
}

/// Share of the footprint's 1 m cells (those whose centre lies inside it) holding at least one
/// roof point. A footprint too small to contain a cell centre counts as covered if it has any
/// point.
fn coverage(g: &MultiPolygon<f64>, cells: &mut Vec<u64>) -> f64 {
    cells.sort_unstable();
    cells.dedup();
    let Some(r) = g.bounding_rect() else {
        return 0.0;
    };
    let mut inside = HashSet::new();
    let (x0, x1) = (r.min().x.floor() as i64, r.max().x.floor() as i64);
    let (y0, y1) = (r.min().y.floor() as i64, r.max().y.floor() as i64);
    for cx in x0..=x1 {
        for cy in y0..=y1 {
            let centre = Point::new(cx as f64 + 0.5, cy as f64 + 0.5);
            if g.contains(&centre) {
                inside.insert(cell_key(centre.x(), centre.y()));
            }
        }
    }
    if inside.is_empty() {
        return if cells.is_empty() { 0.0 } else { 1.0 };
    }
    cells.iter().filter(|c| inside.contains(c)).count() as f64 / inside.len() as f64
}
