//! Known heights from a file of their own: a planning office's list, a field survey, a table
//! of landmark heights. Such a list is rarely a field of the footprints: it is a CSV or
//! GeoPackage that names each building by an id the footprints share, or only says where it
//! is. Each surveyed height is joined to one footprint (by id, else by the footprint its
//! point lies in) and becomes that footprint's label, origin `survey`.

use std::collections::BTreeMap;
use std::path::Path;

use gdal::vector::LayerAccess;
use gdal::{Dataset, DatasetOptions, GdalOpenFlags};
use geo::{Contains, InteriorPoint, Point};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, AABB};

use crate::config::SurveyLabelConfig;
use crate::crs::{Crs, Transform};
use crate::error::{AtFile, Error, FileKind, Result};
use crate::io::footprints::{field_to_string, Footprints};
use crate::label::{Flag, LabelRow, Origin};

/// What became of a survey's rows, for the one line `labels` and `predict` print.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SurveySummary {
    /// Rows read from the survey.
    pub rows: usize,
    /// Rows whose height joined a footprint.
    pub joined: usize,
    /// Rows without a readable height (empty, not a number).
    pub no_height: usize,
    /// Rows that match no footprint (their id is not a footprint's, or their point lies in
    /// none), with the first few for the message.
    pub unmatched: usize,
    /// First unmatched rows, as the survey names them.
    pub unmatched_first: Vec<String>,
    /// Footprints that more than one row gave a height (their median is kept).
    pub repeated: usize,
    /// How rows were joined: `id` or `location`.
    pub by: &'static str,
}

impl SurveySummary {
    /// One line for the log, naming the survey file.
    pub fn describe(&self, path: &Path) -> String {
        let mut s = format!(
            "{}: known heights from a survey: {} of {} rows joined to a footprint by {}",
            named(path).display(),
            self.joined,
            self.rows,
            self.by
        );
        if self.unmatched > 0 {
            s.push_str(&format!(
                "; {} match no footprint (first: {})",
                self.unmatched,
                self.unmatched_first.join(", ")
            ));
        }
        if self.no_height > 0 {
            s.push_str(&format!("; {} have no height", self.no_height));
        }
        if self.repeated > 0 {
            s.push_str(&format!(
                "; {} footprints had several rows (their median is kept)",
                self.repeated
            ));
        }
        s
    }
}

/// How messages name the survey: its file, or the table handed over in memory (the Python
/// package's `known_heights`), not the memory file holding it.
fn named(path: &Path) -> &Path {
    if crate::config::is_in_memory(path) {
        Path::new(crate::io::memory::KNOWN_IN_MEMORY)
    } else {
        path
    }
}

/// A label row per footprint: the surveyed height (in metres) where a survey row joined it,
/// else `missing`.
pub fn survey_labels(
    fp: &Footprints,
    cfg: &SurveyLabelConfig,
) -> Result<(Vec<LabelRow>, SurveySummary)> {
    let path = cfg.path.as_path();
    let fail = |msg: String| Error::of(FileKind::Other, named(path), msg);
    let xy = match (&cfg.x, &cfg.y) {
        (Some(x), Some(y)) => Some([
            format!("X_POSSIBLE_NAMES={x}"),
            format!("Y_POSSIBLE_NAMES={y}"),
        ]),
        (None, None) => None,
        _ => return Err(fail("label.x and label.y go together".into())),
    };
    let xy_refs: Option<Vec<&str>> = xy.as_ref().map(|o| o.iter().map(String::as_str).collect());
    let ds = Dataset::open_ex(
        path,
        DatasetOptions {
            open_flags: GdalOpenFlags::GDAL_OF_VECTOR,
            open_options: xy_refs.as_deref(),
            ..Default::default()
        },
    )
    .map_err(|e| fail(format!("cannot open as a table of surveyed heights: {e}")))?;
    let mut layer = match &cfg.layer {
        Some(l) => ds
            .layer_by_name(l)
            .map_err(|_| fail(format!("has no layer '{l}'")))?,
        None => ds.layer(0).map_err(|_| fail("has no layer".into()))?,
    };
    let names: Vec<String> = layer.defn().fields().map(|f| f.name()).collect();
    let index = |name: &str| {
        names.iter().position(|n| n == name).ok_or_else(|| {
            fail(format!(
                "has no field '{name}' (fields: {})",
                names.join(", ")
            ))
        })
    };
    let h_idx = index(&cfg.field)?;
    let id_idx = cfg.id.as_deref().map(index).transpose()?;
    let by_id = id_idx.is_some();
    // By location: the survey's points in the footprints' working CRS.
    let to_working = if by_id {
        None
    } else {
        let crs = match (&cfg.crs, layer.spatial_ref()) {
            (Some(c), _) => Crs::from_user(c).at_kind(FileKind::Other, named(path))?,
            (None, Some(srs)) => Crs::from_srs(&srs).at_kind(FileKind::Other, named(path))?,
            (None, None) => {
                return Err(fail(
                    "has no CRS to place its rows by; set label.crs (or join by label.id)".into(),
                ))
            }
        };
        Some(Transform::new(&crs, &fp.crs).at_kind(FileKind::Other, named(path))?)
    };
    let unit = cfg.unit.unwrap_or_default().metres();
    let mut summary = SurveySummary {
        by: if by_id { "id" } else { "location" },
        ..Default::default()
    };
    // (row name, height in metres, where it is or which id it names)
    let mut rows: Vec<(String, Option<f64>, Key)> = Vec::new();
    for (i, f) in layer.features().enumerate() {
        summary.rows += 1;
        let name = f.fid().unwrap_or(i as u64).to_string();
        let height = f
            .field(h_idx)
            .ok()
            .flatten()
            .map(|v| field_to_string(&v))
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|h| h.is_finite())
            .map(|h| h * unit);
        let key = match id_idx {
            Some(k) => Key::Id(f.field(k).ok().flatten().map(|v| field_to_string(&v))),
            None => Key::At(
                f.geometry()
                    .and_then(|g| g.to_geo().ok())
                    .and_then(|g| g.interior_point())
                    .map(|p| (p.x(), p.y())),
            ),
        };
        rows.push((name, height, key));
    }
    if rows.is_empty() {
        return Err(fail("has no rows".into()));
    }
    // Place each point in the working CRS; one that cannot be placed (a typo'd coordinate)
    // matches no footprint, rather than failing the survey.
    if let Some(t) = &to_working {
        for r in rows.iter_mut() {
            if let Key::At(Some(p)) = &mut r.2 {
                let (mut x, mut y) = ([p.0], [p.1]);
                let placed =
                    t.apply(&mut x, &mut y).is_ok() && x[0].is_finite() && y[0].is_finite();
                r.2 = Key::At(placed.then_some((x[0], y[0])));
            }
        }
    }
    let footprint_of = Joiner::new(fp);
    let mut found: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for (name, height, key) in &rows {
        let Some(h) = height else {
            summary.no_height += 1;
            continue;
        };
        let at = match key {
            Key::Id(id) => id.as_deref().and_then(|id| footprint_of.id(id)),
            Key::At(p) => p.and_then(|p| footprint_of.point(p)),
        };
        match at {
            Some(i) => {
                summary.joined += 1;
                found.entry(i).or_default().push(*h);
            }
            None => {
                summary.unmatched += 1;
                if summary.unmatched_first.len() < 5 {
                    summary.unmatched_first.push(match key {
                        Key::Id(Some(id)) => format!("id {id}"),
                        _ => format!("row {name}"),
                    });
                }
            }
        }
    }
    if summary.no_height == summary.rows {
        return Err(fail(format!(
            "no row holds a number in field '{}' (a decimal comma, or another field?)",
            cfg.field
        )));
    }
    if summary.joined == 0 && !fp.partial {
        return Err(fail(format!(
            "none of its {} rows joins a footprint by {} (first unmatched: {}); {}",
            summary.rows,
            summary.by,
            summary.unmatched_first.join(", "),
            if by_id {
                "does label.id hold the footprints' ids?"
            } else {
                "is its CRS right (label.crs), and do its points lie in the footprints?"
            }
        )));
    }
    summary.repeated = found.values().filter(|v| v.len() > 1).count();
    let labels = (0..fp.len())
        .map(|i| {
            let h = found.get(&i).map(|v| median(v));
            LabelRow {
                id: fp.ids[i].clone(),
                height_m: h,
                flag: match h {
                    None => Flag::Missing,
                    Some(v) if v <= 0.0 => Flag::NotPositive,
                    Some(_) => Flag::Ok,
                },
                lidar: None,
                origin: Origin::Survey,
            }
        })
        .collect();
    Ok((labels, summary))
}

/// How a survey row names its building.
enum Key {
    /// The footprint id it gives.
    Id(Option<String>),
    /// Where it is (a point inside the building), in the survey's CRS, then the working CRS.
    At(Option<(f64, f64)>),
}

/// Finds the footprint a survey row names.
struct Joiner<'a> {
    fp: &'a Footprints,
    ids: BTreeMap<&'a str, usize>,
    boxes: RTree<GeomWithData<Rectangle<[f64; 2]>, usize>>,
}

impl<'a> Joiner<'a> {
    fn new(fp: &'a Footprints) -> Joiner<'a> {
        use geo::BoundingRect;
        let boxes = fp
            .geometries
            .iter()
            .enumerate()
            .filter_map(|(i, g)| {
                let r = g.bounding_rect()?;
                Some(GeomWithData::new(
                    Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]),
                    i,
                ))
            })
            .collect();
        Joiner {
            fp,
            ids: fp
                .ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.as_str(), i))
                .collect(),
            boxes: RTree::bulk_load(boxes),
        }
    }

    fn id(&self, id: &str) -> Option<usize> {
        self.ids.get(id.trim()).copied()
    }

    /// The footprint the point lies in (the first in file order when footprints overlap).
    fn point(&self, (x, y): (f64, f64)) -> Option<usize> {
        let p = Point::new(x, y);
        self.boxes
            .locate_in_envelope_intersecting(&AABB::from_point([x, y]))
            .map(|b| b.data)
            .filter(|&i| self.fp.geometries[i].contains(&p))
            .min()
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    crate::stats::percentile::percentile_sorted(&v, 50.0)
}
