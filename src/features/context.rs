//! Urban context: how dense, how built-up and how attached each building's surroundings are —
//! the strongest height signal in the literature (terraces and dense blocks are taller than
//! detached houses). Everything goes through R-trees; no pair of far-apart buildings is ever
//! compared.

use geo::{
    Area, BooleanOps, BoundingRect, Buffer, Distance, Euclidean, Length, MultiLineString,
    MultiPolygon,
};
use rayon::prelude::*;
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, AABB};

/// Radii (m) of the neighbourhood counts.
pub const RADII: [f64; 4] = [25.0, 50.0, 100.0, 200.0];
/// Footprints closer than this (m) touch: digitised neighbours leave hairline gaps.
pub const TOUCH_TOLERANCE_M: f64 = 0.3;
/// Buildings closer than this (m) belong to the same block.
pub const BLOCK_TOLERANCE_M: f64 = 1.0;
/// The shared outline is measured against at most this many touching neighbours (the nearest
/// ones): the union of their buffers grows with each one, so without a cap a degenerate input
/// where every footprint touches every other (a wrong CRS) takes hours. Real buildings touch
/// far fewer (at most 12 in the shipped cities).
pub const MAX_SHARED_OUTLINE_NEIGHBOURS: usize = 32;
/// Beyond this (m) a building has no nearest neighbour.
pub const MAX_NN_SEARCH_M: f64 = 5000.0;
/// The nearest neighbour is searched in windows of this size (m), doubled until one holds it.
pub const FIRST_NN_WINDOW_M: f64 = 10.0;

/// How far (m) a context feature looks from a footprint for other buildings, except the two
/// that have no bound: the nearest neighbour (up to [`MAX_NN_SEARCH_M`]) and the block (a chain
/// of buildings closer than [`BLOCK_TOLERANCE_M`]), which a tiled run handles apart.
pub fn reach_m() -> f64 {
    RADII[RADII.len() - 1].max(TOUCH_TOLERANCE_M)
}

/// Feature names of this group, in column order.
pub fn names() -> Vec<String> {
    let mut n = Vec::new();
    for r in RADII {
        let r = r as u32;
        n.push(format!("n_within_{r}m"));
        n.push(format!("area_sum_{r}m"));
        n.push(format!("area_mean_{r}m"));
        n.push(format!("area_max_{r}m"));
        n.push(format!("coverage_{r}m"));
    }
    for s in [
        "area_rank_100m",
        "nn_distance_m",
        "touching_neighbours",
        "shared_perimeter_share",
        "block_buildings",
        "block_area_m2",
        "block_area_share",
    ] {
        n.push(s.to_string());
    }
    n
}

type BoxTree = RTree<GeomWithData<Rectangle<[f64; 2]>, usize>>;

/// The footprints' bounding boxes in an R-tree: which others lie within a distance of one.
pub struct BoxIndex {
    /// Each footprint's bounding box, in footprint order (working CRS).
    pub boxes: Vec<AABB<[f64; 2]>>,
    tree: BoxTree,
}

impl BoxIndex {
    /// Indexes the footprints' bounding boxes.
    pub fn new(geoms: &[MultiPolygon<f64>]) -> BoxIndex {
        let boxes: Vec<AABB<[f64; 2]>> = geoms
            .iter()
            .map(|g| {
                let r = g.bounding_rect().expect("non-empty footprint");
                AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y])
            })
            .collect();
        let tree = RTree::bulk_load(
            boxes
                .iter()
                .enumerate()
                .map(|(i, b)| GeomWithData::new(Rectangle::from_aabb(*b), i))
                .collect(),
        );
        BoxIndex { boxes, tree }
    }

    /// The other footprints whose box lies within `d` of footprint `i`'s box, in index order.
    pub fn near(&self, i: usize, d: f64) -> Vec<usize> {
        let b = &self.boxes[i];
        let mut v: Vec<usize> = self
            .within(
                [b.lower()[0] - d, b.lower()[1] - d],
                [b.upper()[0] + d, b.upper()[1] + d],
            )
            .into_iter()
            .filter(|&j| j != i)
            .collect();
        v.sort_unstable();
        v
    }

    /// The footprints whose box intersects the rectangle `lower`–`upper`, unordered.
    pub fn within(&self, lower: [f64; 2], upper: [f64; 2]) -> Vec<usize> {
        self.tree
            .locate_in_envelope_intersecting(&AABB::from_corners(lower, upper))
            .map(|x| x.data)
            .collect()
    }
}

/// Context features for every footprint (rows in input order, columns as [`names`]), given
/// the footprints' centroids ([`super::centroids`]).
pub fn context_features(geoms: &[MultiPolygon<f64>], centroids: &[[f64; 2]]) -> Vec<Vec<f64>> {
    let n = geoms.len();
    let areas: Vec<f64> = geoms.par_iter().map(|g| g.unsigned_area()).collect();
    let points: RTree<GeomWithData<[f64; 2], usize>> = RTree::bulk_load(
        centroids
            .iter()
            .enumerate()
            .filter(|(_, c)| c[0].is_finite())
            .map(|(i, c)| GeomWithData::new(*c, i))
            .collect(),
    );
    let index = BoxIndex::new(geoms);
    let near = |i: usize, d: f64| index.near(i, d);
    let close = close_pairs(geoms, &index);
    let blocks = Blocks::of(roots_of_links(&close), &areas);
    (0..n)
        .into_par_iter()
        .map(|i| {
            let mut row = Vec::with_capacity(names().len());
            let within = by_centroid_distance(&points, centroids[i], i);
            push_discs(&mut row, &within, &areas, i);
            row.push(area_rank(&within, &areas, i));
            row.push(nearest_from(&close[i], i, geoms, &near));
            push_touching(&mut row, &close[i], i, geoms);
            blocks.push_row(&mut row, i, &areas);
            row
        })
        .collect()
}

/// Per footprint, the exact distance to each other footprint whose box lies within
/// [`FIRST_NN_WINDOW_M`] of its box (index order). Polygon distances are most of the context
/// work; computed once here they answer the touching neighbours (≤ [`TOUCH_TOLERANCE_M`]), the
/// block links (≤ [`BLOCK_TOLERANCE_M`]) and the first window of the nearest-neighbour search,
/// with the values each of those would compute itself.
fn close_pairs(geoms: &[MultiPolygon<f64>], index: &BoxIndex) -> Vec<Vec<(f64, usize)>> {
    (0..geoms.len())
        .into_par_iter()
        .map(|i| {
            index
                .near(i, FIRST_NN_WINDOW_M)
                .into_iter()
                .map(|j| (Euclidean.distance(&geoms[i], &geoms[j]), j))
                .collect()
        })
        .collect()
}

/// Distance to the nearest other footprint, its first window ([`FIRST_NN_WINDOW_M`]) answered
/// from `close` (building `i`'s close pairs); only a building with nothing that close searches
/// on, from the next window ([`nearest_from_window`]).
fn nearest_from(
    close: &[(f64, usize)],
    i: usize,
    geoms: &[MultiPolygon<f64>],
    near: &impl Fn(usize, f64) -> Vec<usize>,
) -> f64 {
    let best = close.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    if best <= FIRST_NN_WINDOW_M {
        return best;
    }
    nearest_from_window(i, geoms, near, 2.0 * FIRST_NN_WINDOW_M)
}

/// The other buildings whose centroid lies within the largest radius of `c` (building `i`'s),
/// nearest first (ties by position, so rows do not depend on the tree's order).
fn by_centroid_distance(
    points: &RTree<GeomWithData<[f64; 2], usize>>,
    c: [f64; 2],
    i: usize,
) -> Vec<(f64, usize)> {
    let mut within: Vec<(f64, usize)> = if c[0].is_finite() {
        let rmax = RADII[RADII.len() - 1];
        points
            .locate_within_distance(c, rmax * rmax)
            .filter(|p| p.data != i)
            .map(|p| {
                let q = p.geom();
                (
                    ((q[0] - c[0]).powi(2) + (q[1] - c[1]).powi(2)).sqrt(),
                    p.data,
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    within.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    within
}

/// Per radius: count, area sum, mean and max of the neighbours, and the built-up ratio
/// (this building's area counted too, as it covers the disc as much as they do).
fn push_discs(row: &mut Vec<f64>, within: &[(f64, usize)], areas: &[f64], i: usize) {
    for r in RADII {
        let inside: Vec<f64> = within
            .iter()
            .take_while(|(d, _)| *d <= r)
            .map(|(_, j)| areas[*j])
            .collect();
        let sum: f64 = inside.iter().sum();
        row.push(inside.len() as f64);
        row.push(sum);
        row.push(if inside.is_empty() {
            f64::NAN
        } else {
            sum / inside.len() as f64
        });
        row.push(inside.iter().copied().fold(f64::NAN, f64::max));
        row.push((sum + areas[i]) / (std::f64::consts::PI * r * r));
    }
}

/// Share of the neighbours within 100 m smaller than building `i`: its size relative to its
/// street, which absolute areas do not say across cities.
fn area_rank(within: &[(f64, usize)], areas: &[f64], i: usize) -> f64 {
    let in100: Vec<f64> = within
        .iter()
        .take_while(|(d, _)| *d <= 100.0)
        .map(|(_, j)| areas[*j])
        .collect();
    if in100.is_empty() {
        f64::NAN
    } else {
        in100.iter().filter(|a| **a < areas[i]).count() as f64 / in100.len() as f64
    }
}

/// Touching neighbours and the share of outline shared with the nearest of them (capped at
/// [`MAX_SHARED_OUTLINE_NEIGHBOURS`], see there).
fn push_touching(
    row: &mut Vec<f64>,
    close: &[(f64, usize)],
    i: usize,
    geoms: &[MultiPolygon<f64>],
) {
    let mut touching: Vec<(f64, usize)> = close
        .iter()
        .copied()
        .filter(|(d, _)| *d <= TOUCH_TOLERANCE_M)
        .collect();
    row.push(touching.len() as f64);
    touching.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    row.push(shared_perimeter_share(
        &geoms[i],
        touching
            .iter()
            .take(MAX_SHARED_OUTLINE_NEIGHBOURS)
            .map(|&(_, j)| &geoms[j]),
    ));
}

/// Each building's block root and each block's building count and area, found once for
/// the whole city.
struct Blocks {
    roots: Vec<usize>,
    count: Vec<usize>,
    area: Vec<f64>,
}

impl Blocks {
    /// Sums buildings and areas per block root.
    fn of(roots: Vec<usize>, areas: &[f64]) -> Blocks {
        let n = roots.len();
        let mut count = vec![0usize; n];
        let mut area = vec![0.0f64; n];
        for i in 0..n {
            count[roots[i]] += 1;
            area[roots[i]] += areas[i];
        }
        Blocks { roots, count, area }
    }

    /// Building `i`'s block: buildings, area and its own share of that area.
    fn push_row(&self, row: &mut Vec<f64>, i: usize, areas: &[f64]) {
        let root = self.roots[i];
        row.push(self.count[root] as f64);
        row.push(self.area[root]);
        row.push(if self.area[root] > 0.0 {
            areas[i] / self.area[root]
        } else {
            f64::NAN
        });
    }
}

/// Blocks: connected components of buildings closer than BLOCK_TOLERANCE_M; the root of each
/// building's component. `near(i, d)` lists the others whose box is within `d` of `i`'s.
pub fn block_roots(
    geoms: &[MultiPolygon<f64>],
    near: &(impl Fn(usize, f64) -> Vec<usize> + Sync),
) -> Vec<usize> {
    let close: Vec<Vec<(f64, usize)>> = (0..geoms.len())
        .into_par_iter()
        .map(|i| {
            near(i, BLOCK_TOLERANCE_M)
                .into_iter()
                .filter(|&j| j > i)
                .map(|j| (Euclidean.distance(&geoms[i], &geoms[j]), j))
                .collect()
        })
        .collect();
    roots_of_links(&close)
}

/// Block roots from measured pairs `(distance, j)` per building (those of [`close_pairs`], or
/// [`block_roots`]'s): buildings linked when closer than [`BLOCK_TOLERANCE_M`].
fn roots_of_links(close: &[Vec<(f64, usize)>]) -> Vec<usize> {
    let links: Vec<Vec<usize>> = close
        .iter()
        .enumerate()
        .map(|(i, c)| {
            c.iter()
                .filter(|&&(d, j)| j > i && d <= BLOCK_TOLERANCE_M)
                .map(|&(_, j)| j)
                .collect()
        })
        .collect();
    union_find(&links)
}

/// The root of each building's connected component under `links` (i's links to later ones).
fn union_find(links: &[Vec<usize>]) -> Vec<usize> {
    let n = links.len();
    let mut uf = petgraph::unionfind::UnionFind::<usize>::new(n);
    for (i, l) in links.iter().enumerate() {
        for &j in l {
            uf.union(i, j);
        }
    }
    (0..n).map(|i| uf.find(i)).collect()
}

/// Distance to the nearest other footprint (0 when touching), searched in windows growing
/// from `first` (m) by doubling.
fn nearest_from_window(
    i: usize,
    geoms: &[MultiPolygon<f64>],
    near: &impl Fn(usize, f64) -> Vec<usize>,
    first: f64,
) -> f64 {
    let mut d = first;
    while d <= MAX_NN_SEARCH_M {
        let best = near(i, d)
            .into_iter()
            .map(|j| Euclidean.distance(&geoms[i], &geoms[j]))
            .fold(f64::INFINITY, f64::min);
        // Any footprint within d has its box within d of ours, so `best <= d` is the true minimum.
        if best <= d {
            return best;
        }
        d *= 2.0;
    }
    f64::NAN
}

/// Share of the footprint's outline lying within TOUCH_TOLERANCE_M of a touching neighbour.
fn shared_perimeter_share<'a>(
    g: &MultiPolygon<f64>,
    neighbours: impl Iterator<Item = &'a MultiPolygon<f64>>,
) -> f64 {
    let perimeter = super::geometry::perimeter(g);
    if perimeter <= 0.0 {
        return f64::NAN;
    }
    let zone = neighbours.fold(MultiPolygon::<f64>::new(vec![]), |acc, n| {
        acc.union(&n.buffer(TOUCH_TOLERANCE_M))
    });
    if zone.0.is_empty() {
        return 0.0;
    }
    let outline = MultiLineString::new(
        g.0.iter()
            .flat_map(|p| {
                std::iter::once(p.exterior().clone()).chain(p.interiors().iter().cloned())
            })
            .collect(),
    );
    let shared: f64 = zone
        .clip(&outline, false)
        .0
        .iter()
        .map(|l| Euclidean.length(l))
        .sum();
    (shared / perimeter).clamp(0.0, 1.0)
}
