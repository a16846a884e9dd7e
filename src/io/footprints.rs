//! Building footprints through GDAL/OGR (GeoPackage, GeoJSON, Shapefile, SQLite, FlatGeobuf, …),
//! reprojected into the city's metric working CRS as `geo` multipolygons.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use gdal::vector::{FieldValue, Geometry, LayerAccess, OGRFieldType, OGRwkbGeometryType};
use gdal::{Dataset, DatasetOptions, GdalOpenFlags};
use geo::MultiPolygon;

use crate::config::{DuplicateIds, FootprintsConfig, InvalidPolicy};
use crate::crs::{Crs, Transform};
use crate::error::{AtFile, Error, FileKind, Result};
use crate::io::plausible::{check_footprints, FootprintSummary};
use crate::io::table::{Column, ColumnData};

/// Footprints of one city in its working CRS, in file order.
#[derive(Clone, Debug)]
pub struct Footprints {
    /// The file read (named in errors and provenance).
    pub path: PathBuf,
    /// The layer read: the configured one, else the file's first.
    pub layer: String,
    /// CRS of the file (or of the config override).
    pub source_crs: Crs,
    /// The metric CRS the geometries are in.
    pub crs: Crs,
    /// One unique id per footprint (the id attribute as text, or the FID), parallel to
    /// `geometries`; the key every later table joins on.
    pub ids: Vec<String>,
    /// Valid (multi)polygons in the working CRS, coordinates in metres.
    pub geometries: Vec<MultiPolygon<f64>>,
    /// Numeric attributes asked for in [`Request::numeric`]; `None` where null or not numeric.
    pub numeric: BTreeMap<String, Vec<Option<f64>>>,
    /// Text attributes asked for in [`Request::text`] that the layer has; `None` where null.
    pub text: BTreeMap<String, Vec<Option<String>>>,
    /// Whether each footprint passes [`Request::filter`] (all true without a filter).
    pub passes_filter: Vec<bool>,
    /// Invalid geometries repaired by MakeValid.
    pub repaired: usize,
    /// Ids of features skipped (empty, non-areal or irreparable geometry).
    pub skipped: Vec<String>,
    /// Features whose id repeated an earlier one's and was made unique (see
    /// [`DuplicateIds`]).
    pub duplicate_ids: usize,
    /// Extent, median area and vertex spacing in the working CRS, checked on reading.
    pub summary: FootprintSummary,
    /// True for a share of a city's footprints (one job of a plan): known heights that join
    /// none of them are not a mistake here.
    pub partial: bool,
}

/// Extra things to read along with ids and geometries.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Attribute names to read as numbers (e.g. a height field); a missing field is an error.
    pub numeric: Vec<String>,
    /// An OGR SQL condition evaluated by the driver.
    pub filter: Option<String>,
    /// Attribute names to read as text where the layer has them (absent ones are left out of
    /// [`Footprints::text`]): OpenStreetMap tags, which an export may or may not carry.
    pub text: Vec<String>,
}

impl Footprints {
    /// Number of footprints kept (skipped features not counted).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no footprint was kept (reading fails before that happens).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The footprints at `rows` (positions in this set, in that order), for one job of a tiled
    /// run; `skipped` ones (no usable polygon) are kept only when `with_skipped`.
    pub fn subset(&self, rows: &[usize], with_skipped: bool) -> Footprints {
        let geometries: Vec<MultiPolygon<f64>> =
            rows.iter().map(|&i| self.geometries[i].clone()).collect();
        Footprints {
            path: self.path.clone(),
            layer: self.layer.clone(),
            source_crs: self.source_crs.clone(),
            crs: self.crs.clone(),
            ids: rows.iter().map(|&i| self.ids[i].clone()).collect(),
            numeric: self
                .numeric
                .iter()
                .map(|(k, v)| (k.clone(), rows.iter().map(|&i| v[i]).collect()))
                .collect(),
            text: self
                .text
                .iter()
                .map(|(k, v)| (k.clone(), rows.iter().map(|&i| v[i].clone()).collect()))
                .collect(),
            passes_filter: rows.iter().map(|&i| self.passes_filter[i]).collect(),
            repaired: self.repaired,
            skipped: if with_skipped {
                self.skipped.clone()
            } else {
                Vec::new()
            },
            duplicate_ids: self.duplicate_ids,
            summary: FootprintSummary::of(&geometries),
            partial: rows.len() < self.len(),
            geometries,
        }
    }
}

/// Opens a vector file for reading; for a Shapefile whose `.cpg` is missing or empty but whose
/// attributes are valid UTF-8 (IGN's BD TOPO exports), reads it as UTF-8 instead of GDAL's
/// ISO-8859-1 default.
pub fn open_vector(path: &Path) -> Result<Dataset> {
    crate::io::gdal_setup::init();
    if crate::io::postgis::is_postgis(path) {
        return crate::io::postgis::open(path, FileKind::Footprints, false);
    }
    if !path.exists() && !crate::config::is_in_memory(path) {
        return Err(Error::of(FileKind::Footprints, path, "does not exist"));
    }
    let utf8 = ["ENCODING=UTF-8"];
    let mut options = DatasetOptions {
        open_flags: GdalOpenFlags::GDAL_OF_VECTOR,
        ..Default::default()
    };
    if shapefile_text_is_utf8(path) {
        options.open_options = Some(&utf8);
    }
    Dataset::open_ex(path, options).map_err(|e| {
        Error::of(
            FileKind::Footprints,
            path,
            format!("cannot open as a vector dataset: {e}"),
        )
    })
}

fn shapefile_text_is_utf8(path: &Path) -> bool {
    let is_shp = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("shp") || e.eq_ignore_ascii_case("dbf"));
    if !is_shp {
        return false;
    }
    let cpg = path.with_extension("cpg");
    let cpg_says = std::fs::read_to_string(&cpg).unwrap_or_default();
    if !cpg_says.trim().is_empty() {
        return false; // GDAL honours a non-empty .cpg itself
    }
    std::fs::read(path.with_extension("dbf"))
        .map(|bytes| {
            !bytes.is_ascii() && std::str::from_utf8(&bytes[dbf_header_len(&bytes)..]).is_ok()
        })
        .unwrap_or(false)
}

fn dbf_header_len(bytes: &[u8]) -> usize {
    if bytes.len() < 10 {
        return bytes.len();
    }
    (u16::from_le_bytes([bytes[8], bytes[9]]) as usize).min(bytes.len())
}

/// Reads footprints; `working` overrides the working-CRS rule.
pub fn read_footprints(
    cfg: &FootprintsConfig,
    working: Option<&Crs>,
    req: &Request,
) -> Result<Footprints> {
    let shown = source_name(&cfg.path);
    let path = shown.as_path();
    let ds = open_vector(&cfg.path)?;
    let mut layer = layer_of(&ds, cfg)?;
    let layer_name = match &cfg.sql {
        Some(_) => "footprints.sql".to_string(),
        None => layer.name(),
    };
    // How messages name where the rows come from: a layer, or the query's result.
    let from = match &cfg.sql {
        Some(_) => "the footprints.sql result".to_string(),
        None => format!("layer '{layer_name}'"),
    };
    if layer.feature_count() == 0 {
        return Err(Error::of(
            FileKind::Footprints,
            path,
            match &cfg.row_filter {
                Some(w) => {
                    format!("no feature of {from} passes footprints.where '{w}'")
                }
                None => format!("{from} has no features"),
            },
        ));
    }
    let fields = Fields {
        path,
        from: &from,
        names: layer.defn().fields().map(|f| f.name()).collect(),
    };
    let id_idx = cfg.id.as_deref().map(|n| fields.index(n)).transpose()?;
    let id_name = cfg.id.as_deref().unwrap_or("FID");
    let numeric_idx: Vec<(String, usize)> = req
        .numeric
        .iter()
        .map(|n| Ok((n.clone(), fields.index(n)?)))
        .collect::<Result<_>>()?;
    let text_idx: Vec<(String, usize)> = req
        .text
        .iter()
        .filter_map(|n| {
            fields
                .names
                .iter()
                .position(|f| f == n)
                .map(|i| (n.clone(), i))
        })
        .collect();
    let (source_crs, crs, crs_note) = footprint_crs(cfg, &layer, &from, path, working)?;
    let transform = Transform::new(&source_crs, &crs).at_kind(FileKind::Footprints, path)?;
    let mut out = Footprints {
        path: path.to_path_buf(),
        layer: layer_name.clone(),
        source_crs,
        crs,
        ids: Vec::new(),
        geometries: Vec::new(),
        numeric: numeric_idx
            .iter()
            .map(|(n, _)| (n.clone(), Vec::new()))
            .collect(),
        text: text_idx
            .iter()
            .map(|(n, _)| (n.clone(), Vec::new()))
            .collect(),
        passes_filter: Vec::new(),
        repaired: 0,
        skipped: Vec::new(),
        duplicate_ids: 0,
        summary: FootprintSummary::of(&[]),
        partial: false,
    };
    // Ids are read first, so a repeated id can be handled by policy before any row is kept.
    let raw_ids = read_ids(&mut layer, id_idx, id_name, path)?;
    let (ids, duplicates) = unique_ids(path, id_name, &raw_ids, cfg.duplicate_ids)?;
    out.duplicate_ids = duplicates;
    let rows = Rows {
        path,
        numeric: &numeric_idx,
        text: &text_idx,
        policy: cfg.invalid,
        transform: &transform,
    };
    let (fids, not_numeric) = rows.read(&mut layer, ids, &mut out)?;
    if out.ids.is_empty() {
        return Err(Error::of(
            FileKind::Footprints,
            path,
            match &cfg.row_filter {
                // Some drivers (GeoPackage) only fail a bad condition while reading.
                Some(w) => format!(
                    "no usable polygon of {from} passes footprints.where '{w}' (is it a valid condition on the fields {}?)",
                    fields.names.join(", ")
                ),
                None => format!("{from} has no usable polygon"),
            },
        ));
    }
    for ((name, _), tally) in numeric_idx.iter().zip(&not_numeric) {
        tally.check(path, name)?;
    }
    out.summary = FootprintSummary::of(&out.geometries);
    check_footprints(path, &out.source_crs, &out.summary)?;
    crate::io::axis_order::check_axis_order(
        path,
        &out.source_crs,
        &out.crs,
        &out.geometries,
        &out.summary.extent,
    )?;
    if let Some(note) = crs_note {
        tracing::warn!("{}: {note}", path.display());
    }
    report_skipped_and_repaired(path, &out);
    out.passes_filter = passes_filter(&mut layer, req, &fids, path)?;
    Ok(out)
}

/// The layer's field names, so a missing field's error can list the ones there are.
struct Fields<'a> {
    path: &'a Path,
    /// `layer 'name'` or `the footprints.sql result`, for messages.
    from: &'a str,
    names: Vec<String>,
}

impl Fields<'_> {
    /// The position of field `name`; an error listing the fields when there is none.
    fn index(&self, name: &str) -> Result<usize> {
        self.names.iter().position(|f| f == name).ok_or_else(|| {
            Error::of(
                FileKind::Footprints,
                self.path,
                format!(
                    "{} has no field '{name}' (fields: {})",
                    self.from,
                    self.names.join(", ")
                ),
            )
        })
    }
}

/// The file's CRS (the config's override first) and the working CRS (`working`, else the
/// rule for the layer's centre, with its note when a metric CRS was passed over); a layer
/// without a CRS is refused rather than guessed.
fn footprint_crs(
    cfg: &FootprintsConfig,
    layer: &gdal::vector::Layer<'_>,
    from: &str,
    path: &Path,
    working: Option<&Crs>,
) -> Result<(Crs, Crs, Option<String>)> {
    let source_crs = match &cfg.crs {
        Some(def) => Crs::from_user(def).at_kind(FileKind::Footprints, path)?,
        None => match layer.spatial_ref() {
            // GeoPackage's "Undefined Cartesian SRS" (and any local CRS) says nothing.
            Some(srs) if !undefined_crs(&srs) => {
                Crs::from_srs(&srs).at_kind(FileKind::Footprints, path)?
            }
            _ => {
                return Err(Error::of(
                    FileKind::Footprints,
                    path,
                    format!("{from} has no CRS; set footprints.crs in the city config"),
                ))
            }
        },
    };
    let (crs, note) = match working {
        Some(c) => (c.clone(), None),
        None => {
            let e = layer.get_extent().at_kind(FileKind::Footprints, path)?;
            source_crs
                .working_for_noted(((e.MinX + e.MaxX) / 2.0, (e.MinY + e.MaxY) / 2.0))
                .at_kind(FileKind::Footprints, path)?
        }
    };
    Ok((source_crs, crs, note))
}

/// Every feature's raw id and FID, in file order; a null id is an error, as nothing could
/// join to that footprint.
fn read_ids(
    layer: &mut gdal::vector::Layer<'_>,
    id_idx: Option<usize>,
    id_name: &str,
    path: &Path,
) -> Result<Vec<(String, Option<u64>)>> {
    layer
        .features()
        .enumerate()
        .map(|(i, f)| {
            let id = feature_id(&f, id_idx, i)
                .at_kind(FileKind::Footprints, path)?
                .ok_or_else(|| {
                    Error::of(
                        FileKind::Footprints,
                        path,
                        format!(
                            "feature {} has a null id in field '{id_name}'",
                            f.fid().unwrap_or(i as u64)
                        ),
                    )
                })?;
            Ok((id, f.fid()))
        })
        .collect()
}

/// How the features become rows: the numeric fields to read, the invalid-geometry policy and
/// the reprojection.
struct Rows<'a> {
    path: &'a Path,
    numeric: &'a [(String, usize)],
    text: &'a [(String, usize)],
    policy: InvalidPolicy,
    transform: &'a Transform,
}

impl Rows<'_> {
    /// Keeps each feature with a usable polygon (id, geometry, numeric fields) in `out`;
    /// returns the kept features' FIDs (the filter matches by them) and a tally per numeric
    /// field.
    fn read(
        &self,
        layer: &mut gdal::vector::Layer<'_>,
        ids: Vec<String>,
        out: &mut Footprints,
    ) -> Result<(Vec<u64>, Vec<NotNumeric>)> {
        let path = self.path;
        let mut fids = Vec::new();
        let mut not_numeric = vec![NotNumeric::default(); self.numeric.len()];
        let mut not_areal = NotAreal::default();
        for ((i, feature), id) in layer.features().enumerate().zip(ids) {
            let geom = match feature.geometry() {
                Some(g) if !g.is_empty() => g,
                _ => {
                    reject(path, &id, "has no geometry", self.policy, &mut out.skipped)?;
                    continue;
                }
            };
            if not_areal.counts(geom) {
                continue;
            }
            let Some(mp) = to_multipolygon(path, &id, geom, self.policy, self.transform, out)?
            else {
                continue;
            };
            for ((name, idx), tally) in self.numeric.iter().zip(&mut not_numeric) {
                let raw = feature.field(*idx).at_kind(FileKind::Footprints, path)?;
                let v = tally.read(raw);
                out.numeric
                    .get_mut(name)
                    .expect("column made above")
                    .push(v);
            }
            for (name, idx) in self.text {
                let v = feature
                    .field_as_string(*idx)
                    .at_kind(FileKind::Footprints, path)?;
                out.text.get_mut(name).expect("column made above").push(v);
            }
            fids.push(feature.fid().unwrap_or(i as u64));
            out.ids.push(id);
            out.geometries.push(mp);
        }
        not_areal.check(path, out.geometries.is_empty() && out.skipped.is_empty())?;
        Ok((fids, not_numeric))
    }
}

/// Points and lines among the footprints: an OpenStreetMap export (Overpass GeoJSON, a layer
/// of mixed geometries) carries tagged nodes and open ways beside the building polygons. They
/// are not footprints, so they are skipped — not written back as rows without geometry.
#[derive(Default)]
struct NotAreal {
    by_type: BTreeMap<String, usize>,
}

impl NotAreal {
    /// Counts `geom` when it is a point or a line (true: skip it).
    fn counts(&mut self, geom: &Geometry) -> bool {
        use OGRwkbGeometryType as T;
        let ty = gdal::vector::geometry_type_flatten(geom.geometry_type());
        let pointlike = [
            T::wkbPoint,
            T::wkbMultiPoint,
            T::wkbLineString,
            T::wkbMultiLineString,
            T::wkbCircularString,
            T::wkbCompoundCurve,
            T::wkbMultiCurve,
        ]
        .contains(&ty);
        if pointlike {
            *self
                .by_type
                .entry(gdal::vector::geometry_type_to_name(ty))
                .or_default() += 1;
        }
        pointlike
    }

    /// A warning with the counts; an error when the layer held nothing else (`nothing_else`):
    /// then it is not a layer of footprints.
    fn check(&self, path: &Path, nothing_else: bool) -> Result<()> {
        if self.by_type.is_empty() {
            return Ok(());
        }
        let n: usize = self.by_type.values().sum();
        let kinds = self
            .by_type
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        if nothing_else {
            return Err(Error::of(
                FileKind::Footprints,
                path,
                format!(
                    "holds no polygon, only {kinds}: name the layer of building polygons with footprints.layer (an OpenStreetMap .osm/.pbf file's is 'multipolygons')"
                ),
            ));
        }
        tracing::warn!(
            "{}: skipped {n} features that are not polygons ({kinds}), as in OpenStreetMap exports; every polygon was read",
            path.display()
        );
        Ok(())
    }
}

/// Of one numeric field: values read as numbers, values that are not numbers, the first such
/// (a field of text only is a wrong field, a few stray words are missing values).
#[derive(Clone, Default)]
struct NotNumeric {
    numbers: usize,
    others: usize,
    example: Option<String>,
}

impl NotNumeric {
    /// The value as a number (`None` when null or not a number), counted.
    fn read(&mut self, raw: Option<FieldValue>) -> Option<f64> {
        let v = raw.clone().and_then(field_to_f64);
        match (&raw, v) {
            (Some(_), Some(_)) => self.numbers += 1,
            (Some(r), None) => {
                self.others += 1;
                self.example.get_or_insert_with(|| field_to_string(r));
            }
            _ => {}
        }
        v
    }

    /// An error when field `name` held no number at all, a warning when it held some text.
    fn check(&self, path: &Path, name: &str) -> Result<()> {
        let example = self.example.clone().unwrap_or_default();
        let others = self.others;
        if others > 0 && self.numbers == 0 {
            return Err(Error::of(FileKind::Footprints,
                path,
                format!("field '{name}' is not numeric (e.g. '{example}'); name a field holding heights in metres"),
            ));
        }
        if others > 0 {
            tracing::warn!(
                "{}: field '{name}' holds {others} values that are not numbers (e.g. '{example}'); read as missing",
                path.display()
            );
        }
        Ok(())
    }
}

/// Tells what was skipped and repaired: both change the rows a user gets back.
fn report_skipped_and_repaired(path: &Path, out: &Footprints) {
    if !out.skipped.is_empty() {
        tracing::warn!(
            "{}: {} footprints have no usable polygon (first: {}): no features and no height, kept as rows flagged no_geometry",
            path.display(),
            out.skipped.len(),
            out.skipped
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if out.repaired > 0 {
        tracing::info!(
            "{}: repaired {} invalid footprints with MakeValid",
            path.display(),
            out.repaired
        );
    }
}

/// Whether each kept feature passes `req.filter`, asked of the driver (OGR SQL) by FID.
fn passes_filter(
    layer: &mut gdal::vector::Layer<'_>,
    req: &Request,
    fids: &[u64],
    path: &Path,
) -> Result<Vec<bool>> {
    Ok(match &req.filter {
        None => vec![true; fids.len()],
        Some(expr) => {
            layer.set_attribute_filter(expr).map_err(|e| {
                Error::of(
                    FileKind::Footprints,
                    path,
                    format!("bad filter '{expr}': {e}"),
                )
            })?;
            // Matched by feature id: ids may have been made unique above.
            let pass: HashSet<u64> = layer.features().filter_map(|f| f.fid()).collect();
            layer.clear_attribute_filter();
            fids.iter().map(|fid| pass.contains(fid)).collect()
        }
    })
}

/// Applies the duplicate-id policy; returns one unique id per feature and how many features
/// repeated an earlier id.
fn unique_ids(
    path: &Path,
    id_name: &str,
    raw: &[(String, Option<u64>)],
    policy: DuplicateIds,
) -> Result<(Vec<String>, usize)> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(raw.len());
    let repeated: Vec<&str> = raw
        .iter()
        .filter(|(id, _)| !seen.insert(id.as_str()))
        .map(|(id, _)| id.as_str())
        .collect();
    let ids: Vec<String> = raw.iter().map(|(id, _)| id.clone()).collect();
    let Some(first) = repeated.first() else {
        return Ok((ids, 0));
    };
    let n = repeated.len();
    let hint = "set footprints.duplicate_ids = \"suffix\", \"fid\" or \"error\" in the city config";
    match policy {
        DuplicateIds::Error => Err(Error::of(FileKind::Footprints,
            path,
            format!(
                "id '{first}' (field '{id_name}') occurs more than once ({n} features repeat an earlier id); {hint}"
            ),
        )),
        DuplicateIds::Fid => {
            let fids: Vec<String> = raw
                .iter()
                .enumerate()
                .map(|(i, (_, fid))| fid.unwrap_or(i as u64).to_string())
                .collect();
            let mut check = HashSet::new();
            if let Some(dup) = fids.iter().find(|f| !check.insert(f.as_str())) {
                return Err(Error::of(FileKind::Footprints,
                    path,
                    format!("feature id {dup} occurs more than once; use duplicate_ids = \"suffix\""),
                ));
            }
            tracing::warn!(
                "{}: {n} features repeat an id in field '{id_name}' (first: '{first}'); every footprint is identified by its feature id (FID) instead",
                path.display()
            );
            Ok((fids, n))
        }
        DuplicateIds::Suffix => {
            let taken: HashSet<&str> = raw.iter().map(|(id, _)| id.as_str()).collect();
            let mut used: HashSet<String> = HashSet::with_capacity(raw.len());
            let mut out = Vec::with_capacity(raw.len());
            for id in ids {
                if used.insert(id.clone()) {
                    out.push(id);
                    continue;
                }
                let mut k = 2;
                let unique = loop {
                    let candidate = format!("{id}~{k}");
                    if !taken.contains(candidate.as_str()) && !used.contains(&candidate) {
                        break candidate;
                    }
                    k += 1;
                };
                used.insert(unique.clone());
                out.push(unique);
            }
            tracing::warn!(
                "{}: {n} features repeat an id in field '{id_name}' (first: '{first}'); they were kept with unique suffixes ('{first}~2', …); {hint}",
                path.display()
            );
            Ok((out, n))
        }
    }
}

/// The footprint layer: a named (or the first) layer of the dataset, or the result of the
/// configured SQL query.
enum FootprintLayer<'a> {
    Layer(gdal::vector::Layer<'a>),
    Sql(gdal::vector::sql::ResultSet<'a>),
}

impl<'a> std::ops::Deref for FootprintLayer<'a> {
    type Target = gdal::vector::Layer<'a>;

    fn deref(&self) -> &Self::Target {
        match self {
            FootprintLayer::Layer(l) => l,
            FootprintLayer::Sql(r) => r,
        }
    }
}

impl std::ops::DerefMut for FootprintLayer<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            FootprintLayer::Layer(l) => l,
            FootprintLayer::Sql(r) => r,
        }
    }
}

/// The configured layer (the first when none is named) or SQL query's result, checked to hold
/// geometries; errors name the source (a connection string without its password).
fn layer_of<'a>(ds: &'a Dataset, cfg: &FootprintsConfig) -> Result<FootprintLayer<'a>> {
    let path = &source_name(&cfg.path);
    let database = crate::io::postgis::is_postgis(&cfg.path);
    let (mut layer, what) = match (&cfg.sql, &cfg.layer) {
        (Some(sql), _) => {
            let rs = ds
                .execute_sql(sql, None, gdal::vector::sql::Dialect::DEFAULT)
                .map_err(|e| {
                    Error::of(
                        FileKind::Footprints,
                        path,
                        format!("footprints.sql failed: {e}"),
                    )
                })?
                .ok_or_else(|| {
                    Error::of(
                        FileKind::Footprints,
                        path,
                        "footprints.sql returned no result set (it must be a SELECT)",
                    )
                })?;
            (
                FootprintLayer::Sql(rs),
                "the footprints.sql query".to_string(),
            )
        }
        (None, Some(name)) => {
            let l = ds.layer_by_name(name).map_err(|_| {
                Error::of(
                    FileKind::Footprints,
                    path,
                    if database {
                        format!(
                            "no table '{name}' (or no access to it; tables: {})",
                            crate::io::postgis::table_names(ds, 20)
                        )
                    } else {
                        let names: Vec<String> = ds.layers().map(|l| l.name()).collect();
                        format!("no layer '{name}' (layers: {})", names.join(", "))
                    },
                )
            })?;
            (FootprintLayer::Layer(l), format!("layer '{name}'"))
        }
        // An OpenStreetMap file's buildings (closed ways and multipolygon relations) are in
        // GDAL's 'multipolygons' layer; its first is 'points'.
        (None, None) if ds.driver().short_name() == "OSM" => {
            let l = ds.layer_by_name("multipolygons").map_err(|_| {
                Error::of(
                    FileKind::Footprints,
                    path,
                    "is an OpenStreetMap file without a 'multipolygons' layer",
                )
            })?;
            (
                FootprintLayer::Layer(l),
                "layer 'multipolygons'".to_string(),
            )
        }
        (None, None) => {
            let l = ds.layer(0).map_err(|_| {
                Error::of(
                    FileKind::Footprints,
                    path,
                    if database {
                        "has no table with a geometry column; name one with footprints.layer"
                    } else {
                        "has no layers"
                    },
                )
            })?;
            let name = l.name();
            (FootprintLayer::Layer(l), format!("layer '{name}'"))
        }
    };
    if layer.defn().geom_fields().next().is_none() {
        return Err(Error::of(
            FileKind::Footprints,
            path,
            format!("{what} has no geometry column"),
        ));
    }
    if let Some(expr) = &cfg.row_filter {
        layer.set_attribute_filter(expr).map_err(|e| {
            Error::of(
                FileKind::Footprints,
                path,
                format!("bad footprints.where '{expr}': {e}"),
            )
        })?;
    }
    Ok(layer)
}

/// How a footprint source is named in errors and outputs: a connection string without its
/// password, a file path as is.
pub fn source_name(path: &Path) -> PathBuf {
    crate::io::postgis::display_name(path)
}

/// Which of the footprint file's own attributes an output carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeepColumns {
    /// Every attribute of the file.
    All,
    /// These fields (the id field is always kept).
    Only(Vec<String>),
    /// Only the id field.
    IdOnly,
}

/// The footprint file's attributes, to carry into outputs: every feature's id (as
/// [`read_footprints`] gives it) and the kept fields as typed columns under their own names, the
/// id field included. Skipped footprints are read too; callers join by id.
pub fn read_attributes(
    cfg: &FootprintsConfig,
    keep: &KeepColumns,
) -> Result<(Vec<String>, Vec<Column>)> {
    let shown = source_name(&cfg.path);
    let path = shown.as_path();
    let ds = open_vector(&cfg.path)?;
    let mut layer = layer_of(&ds, cfg)?;
    let fields: Vec<(String, u32)> = layer
        .defn()
        .fields()
        .map(|f| (f.name(), f.field_type()))
        .collect();
    let id_idx = match cfg.id.as_deref() {
        Some(id) => Some(fields.iter().position(|(n, _)| n == id).ok_or_else(|| {
            Error::of(
                FileKind::Footprints,
                path,
                format!("layer has no field '{id}'"),
            )
        })?),
        None => None,
    };
    let chosen = kept_fields(&fields, id_idx, keep, path)?;
    let mut cols: Vec<ColumnData> = chosen
        .iter()
        .map(|&i| match fields[i].1 {
            OGRFieldType::OFTInteger | OGRFieldType::OFTInteger64 => ColumnData::I64(Vec::new()),
            OGRFieldType::OFTReal => ColumnData::F64(Vec::new()),
            _ => ColumnData::Str(Vec::new()),
        })
        .collect();
    let mut raw_ids = Vec::new();
    for (pos, f) in layer.features().enumerate() {
        raw_ids.push((
            feature_id(&f, id_idx, pos)
                .at_kind(FileKind::Footprints, path)?
                .unwrap_or_default(),
            f.fid(),
        ));
        for (col, &i) in cols.iter_mut().zip(&chosen) {
            push_field(col, &f, i).at_kind(FileKind::Footprints, path)?;
        }
    }
    // The same unique ids as the footprints got, so repeated ids still join to their own row.
    let id_name = cfg.id.as_deref().unwrap_or("FID");
    let (ids, _) = unique_ids(path, id_name, &raw_ids, cfg.duplicate_ids)?;
    let columns = chosen
        .iter()
        .zip(cols)
        .map(|(&i, data)| Column {
            name: fields[i].0.clone(),
            data,
        })
        .collect();
    Ok((ids, columns))
}

/// The fields `keep` asks for (the id field first), by position; a misspelt name is an
/// error listing the fields.
fn kept_fields(
    fields: &[(String, u32)],
    id_idx: Option<usize>,
    keep: &KeepColumns,
    path: &Path,
) -> Result<Vec<usize>> {
    Ok(match keep {
        KeepColumns::All => (0..fields.len()).collect(),
        KeepColumns::IdOnly => id_idx.into_iter().collect(),
        KeepColumns::Only(names) => {
            let mut v: Vec<usize> = id_idx.into_iter().collect();
            for n in names {
                let i = fields.iter().position(|(f, _)| f == n).ok_or_else(|| {
                    let all: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
                    Error::of(
                        FileKind::Footprints,
                        path,
                        format!(
                            "`keep_columns`: no field '{n}' (fields: {})",
                            all.join(", ")
                        ),
                    )
                })?;
                if !v.contains(&i) {
                    v.push(i);
                }
            }
            v
        }
    })
}

/// Field `i` of a feature onto its column, read as the column's type.
fn push_field(
    col: &mut ColumnData,
    f: &gdal::vector::Feature,
    i: usize,
) -> gdal::errors::Result<()> {
    match col {
        ColumnData::I64(v) => v.push(f.field_as_integer64(i)?),
        ColumnData::F64(v) => v.push(f.field_as_double(i)?),
        ColumnData::Str(v) => v.push(f.field_as_string(i)?),
        ColumnData::Bool(_) => unreachable!("no boolean columns are made above"),
    }
    Ok(())
}

/// The id of a feature: its id field, else its FID, else its position.
fn feature_id(
    f: &gdal::vector::Feature,
    id_idx: Option<usize>,
    position: usize,
) -> gdal::errors::Result<Option<String>> {
    Ok(match id_idx {
        Some(idx) => f.field(idx)?.map(|v| field_to_string(&v)),
        None => Some(f.fid().unwrap_or(position as u64).to_string()),
    })
}

fn reject(
    path: &Path,
    id: &str,
    why: &str,
    policy: InvalidPolicy,
    skipped: &mut Vec<String>,
) -> Result<()> {
    match policy {
        InvalidPolicy::Error => Err(Error::of(
            FileKind::Footprints,
            path,
            format!("footprint '{id}' {why}"),
        )),
        _ => {
            skipped.push(id.to_string());
            Ok(())
        }
    }
}

/// No CRS has coordinates beyond this (metres, feet or degrees: the Earth is 4e7 m round).
/// GEOS's MakeValid never returns on rings with coordinates near 1e200 (a flipped byte in a
/// Shapefile makes them), so such footprints are refused before any GEOS call.
const MAX_COORDINATE: f64 = 1e9;

/// Whether every vertex of `g` is finite and within [`MAX_COORDINATE`].
fn coordinates_in_range(g: &Geometry) -> bool {
    let n = g.geometry_count();
    if n > 0 {
        return (0..n).all(|i| coordinates_in_range(&g.get_geometry(i)));
    }
    (0..g.point_count()).all(|i| {
        let (x, y, _) = g.get_point(i as i32);
        // NaN fails both comparisons.
        x.abs() <= MAX_COORDINATE && y.abs() <= MAX_COORDINATE
    })
}

/// Flattens, checks, repairs and reprojects one geometry; `None` when it is skipped.
fn to_multipolygon(
    path: &Path,
    id: &str,
    geom: &Geometry,
    policy: InvalidPolicy,
    transform: &Transform,
    out: &mut Footprints,
) -> Result<Option<MultiPolygon<f64>>> {
    let Some(mut g) = areal(path, id, geom, policy, &mut out.skipped)? else {
        return Ok(None);
    };
    if !coordinates_in_range(&g) {
        reject(
            path,
            id,
            &format!("has a coordinate that is not a number or lies beyond ±{MAX_COORDINATE:e} (a corrupt file?)"),
            policy,
            &mut out.skipped,
        )?;
        return Ok(None);
    }
    if !g.is_valid() {
        let Some(v) = made_valid(path, id, g, policy, out)? else {
            return Ok(None);
        };
        g = v;
    }
    if let Some(ct) = transform.gdal() {
        g.transform_inplace(ct).map_err(|e| {
            Error::of(
                FileKind::Footprints,
                path,
                format!("footprint '{id}' cannot be reprojected: {e}"),
            )
        })?;
    }
    let polys = polygons_of(&g.to_geo().at_kind(FileKind::Footprints, path)?);
    if polys.0.is_empty() {
        reject(path, id, "has no polygon area", policy, &mut out.skipped)?;
        return Ok(None);
    }
    Ok(Some(polys))
}

/// The geometry in 2D as a polygon, multipolygon or collection (curves linearised). Points
/// and lines never get here (skipped and counted by `NotAreal`); any other type (a TIN, a
/// polyhedral surface) is an error whatever the policy, as the file is not of footprints.
fn areal(
    path: &Path,
    id: &str,
    geom: &Geometry,
    policy: InvalidPolicy,
    skipped: &mut Vec<String>,
) -> Result<Option<Geometry>> {
    let mut g = geom.clone();
    g.flatten_to_2d();
    let ty = gdal::vector::geometry_type_flatten(g.geometry_type());
    if matches!(
        ty,
        OGRwkbGeometryType::wkbPolygon | OGRwkbGeometryType::wkbMultiPolygon
    ) {
        return Ok(Some(g));
    }
    if is_curved_areal(ty) {
        match linearise(&g) {
            Some(lin) => return Ok(Some(lin)),
            None => {
                reject(
                    path,
                    id,
                    "is a curved polygon that cannot be linearised",
                    policy,
                    skipped,
                )?;
                return Ok(None);
            }
        }
    }
    if ty != OGRwkbGeometryType::wkbGeometryCollection {
        return Err(Error::of(
            FileKind::Footprints,
            path,
            format!(
                "footprint '{id}' is a {}, not a polygon",
                gdal::vector::geometry_type_to_name(ty)
            ),
        ));
    }
    Ok(Some(g))
}

/// An invalid geometry as the policy says: an error, skipped, or repaired by MakeValid
/// (skipped when nothing is left); `None` when skipped.
fn made_valid(
    path: &Path,
    id: &str,
    g: Geometry,
    policy: InvalidPolicy,
    out: &mut Footprints,
) -> Result<Option<Geometry>> {
    match policy {
        InvalidPolicy::Error => Err(Error::of(
            FileKind::Footprints,
            path,
            format!("footprint '{id}' is not a valid polygon"),
        )),
        InvalidPolicy::Skip => {
            out.skipped.push(id.to_string());
            Ok(None)
        }
        InvalidPolicy::Repair => match g.make_valid(&Default::default()) {
            Ok(v) if !v.is_empty() => {
                out.repaired += 1;
                Ok(Some(v))
            }
            _ => {
                out.skipped.push(id.to_string());
                Ok(None)
            }
        },
    }
}

/// GeoPackage writes layers without a CRS as "Undefined geographic SRS" or "Undefined
/// Cartesian SRS" (srs_id 0 / -1): no CRS at all, not WGS 84.
fn undefined_crs(srs: &gdal::spatial_ref::SpatialRef) -> bool {
    srs.is_local()
        || srs
            .name()
            .is_some_and(|n| n.to_ascii_lowercase().starts_with("undefined"))
}

/// Curve polygons (GML, some GeoPackages) as plain polygons; the gdal crate has no wrapper for
/// OGR_G_GetLinearGeometry, so go through it and WKT.
fn linearise(g: &Geometry) -> Option<Geometry> {
    // SAFETY: the linear geometry and the WKT buffer are owned here and freed before returning.
    let wkt = unsafe {
        let lin = gdal_sys::OGR_G_GetLinearGeometry(g.c_geometry(), 0.0, std::ptr::null_mut());
        if lin.is_null() {
            return None;
        }
        let mut buf: *mut std::os::raw::c_char = std::ptr::null_mut();
        let err = gdal_sys::OGR_G_ExportToIsoWkt(lin, &mut buf);
        gdal_sys::OGR_G_DestroyGeometry(lin);
        if err != gdal_sys::OGRErr::OGRERR_NONE || buf.is_null() {
            return None;
        }
        let s = std::ffi::CStr::from_ptr(buf).to_string_lossy().into_owned();
        gdal_sys::VSIFree(buf.cast());
        s
    };
    Geometry::from_wkt(&wkt).ok()
}

fn is_curved_areal(ty: OGRwkbGeometryType::Type) -> bool {
    matches!(
        ty,
        OGRwkbGeometryType::wkbCurvePolygon | OGRwkbGeometryType::wkbMultiSurface
    )
}

/// The polygons of a geometry (MakeValid may return a collection with stray lines).
fn polygons_of(g: &geo::Geometry<f64>) -> MultiPolygon<f64> {
    let mut polys = Vec::new();
    collect_polygons(g, &mut polys);
    MultiPolygon(polys)
}

fn collect_polygons(g: &geo::Geometry<f64>, out: &mut Vec<geo::Polygon<f64>>) {
    match g {
        geo::Geometry::Polygon(p) => out.push(p.clone()),
        geo::Geometry::MultiPolygon(mp) => out.extend(mp.0.iter().cloned()),
        geo::Geometry::GeometryCollection(gc) => gc.0.iter().for_each(|g| collect_polygons(g, out)),
        _ => {}
    }
}

/// Ids as text: integers without a decimal point even when the driver stores them as reals
/// (Amsterdam's BAG ids come as `363100012078463.0`).
pub fn field_to_string(v: &FieldValue) -> String {
    match v {
        FieldValue::IntegerValue(i) => i.to_string(),
        FieldValue::Integer64Value(i) => i.to_string(),
        FieldValue::RealValue(r) if r.fract() == 0.0 && r.abs() < 9.0e15 => {
            format!("{}", *r as i64)
        }
        FieldValue::RealValue(r) => r.to_string(),
        FieldValue::StringValue(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

fn field_to_f64(v: FieldValue) -> Option<f64> {
    match v {
        FieldValue::IntegerValue(i) => Some(i as f64),
        FieldValue::Integer64Value(i) => Some(i as f64),
        FieldValue::RealValue(r) if r.is_finite() => Some(r),
        FieldValue::StringValue(s) => s.trim().parse().ok(),
        _ => None,
    }
}
