//! The model file: a tar archive (inspect it with `tar tf`) holding `roofline.json` (metadata,
//! serde) and the boosters in hessboost's stable binary format (`point.hbm`,
//! `quantiles.hbm`), which later hessboost releases keep reading. Entries carry fixed
//! timestamps and owners, so the same model gives the same bytes.

use std::io::Read;
use std::path::Path;

use hessboost::model::{BoostedModel, ModelFormat};

use super::intervals::IntervalModel;
use super::{HeightModel, ModelMeta, FORMAT_VERSION, OLDEST_FORMAT_VERSION};
use crate::error::{AtFile, Error, FileKind, Result};

const META: &str = "roofline.json";
const POINT: &str = "point.hbm";
const QUANTILES: &str = "quantiles.hbm";

impl HeightModel {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut b = tar::Builder::new(Vec::new());
        b.mode(tar::HeaderMode::Deterministic);
        let meta = serde_json::to_vec_pretty(&self.meta)
            .map_err(|e| Error::invalid(format!("model metadata: {e}")))?;
        append(&mut b, META, &meta)?;
        append(&mut b, POINT, &self.point.encode(ModelFormat::Binary)?)?;
        if let Some(i) = &self.interval {
            append(&mut b, QUANTILES, &i.quantiles.encode(ModelFormat::Binary)?)?;
        }
        b.into_inner()
            .map_err(|e| Error::invalid(format!("model archive: {e}")))
    }

    /// Writes the model atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::io::output::write_bytes(path, &self.to_bytes()?)
    }

    /// Reads a model file written by [`HeightModel::save`]; an error naming the file when it is
    /// not a roofline model, truncated, inconsistent, or of another format version.
    pub fn load(path: &Path) -> Result<HeightModel> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::of(FileKind::Model, path, format!("cannot read model: {e}")))?;
        if let Some(what) = not_a_model(&bytes) {
            return Err(Error::of(
                FileKind::Model,
                path,
                format!(
                    "is {what}, not a roofline model (the .model file `roofline train` writes)"
                ),
            ));
        }
        Self::from_bytes(&bytes).map_err(|e| e.in_file(FileKind::Model, path))
    }

    /// Parses a model file's bytes, with the same checks as [`HeightModel::load`] but errors
    /// that name no file.
    pub fn from_bytes(bytes: &[u8]) -> Result<HeightModel> {
        let mut archive = tar::Archive::new(bytes);
        let (mut meta, mut point, mut quantiles) = (None, None, None);
        let entries = archive
            .entries()
            .map_err(|e| Error::invalid(format!("not a roofline model: {e}")))?;
        for entry in entries {
            let mut entry =
                entry.map_err(|e| Error::invalid(format!("not a roofline model: {e}")))?;
            let name = entry
                .path()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut data = Vec::new();
            entry
                .read_to_end(&mut data)
                .map_err(|e| Error::invalid(format!("truncated model: {e}")))?;
            match name.as_str() {
                META => meta = Some(data),
                POINT => point = Some(data),
                QUANTILES => quantiles = Some(data),
                _ => {}
            }
        }
        let meta = meta.ok_or_else(|| Error::invalid("not a roofline model (no roofline.json)"))?;
        let version: serde_json::Value = serde_json::from_slice(&meta)
            .map_err(|e| Error::invalid(format!("bad model metadata: {e}")))?;
        let v = version.get("format_version").and_then(|v| v.as_u64());
        match v {
            Some(v) if (OLDEST_FORMAT_VERSION as u64..=FORMAT_VERSION as u64).contains(&v) => {}
            Some(found) => {
                return Err(Error::ModelVersion {
                    path: None,
                    found,
                    supported: FORMAT_VERSION as u64,
                })
            }
            None => {
                return Err(Error::invalid(
                    "not a roofline model (roofline.json has no format_version)",
                ))
            }
        }
        let meta: ModelMeta = serde_json::from_slice(&meta)
            .map_err(|e| Error::invalid(format!("bad model metadata: {e}")))?;
        let n = meta.feature_names.len();
        for (what, len) in [
            ("feature_ranges", meta.feature_ranges.len()),
            ("features", meta.features.len()),
        ] {
            if len != n {
                return Err(Error::invalid(format!(
                    "bad model metadata: {what} has {len} entries for {n} features"
                )));
            }
        }
        let point = BoostedModel::decode(
            point.ok_or_else(|| Error::invalid("model has no point booster"))?,
            ModelFormat::Binary,
        )?;
        if point.n_features() != n || point.n_outputs() != 1 {
            return Err(Error::invalid(format!(
                "model booster has {} features and {} outputs; its metadata names {n} features for 1 output",
                point.n_features(),
                point.n_outputs()
            )));
        }
        let interval = match (quantiles, &meta.calibration) {
            (Some(q), Some(c)) => {
                let quantiles = BoostedModel::decode(q, ModelFormat::Binary)?;
                if quantiles.n_features() != n || quantiles.n_outputs() != 2 {
                    return Err(Error::invalid(format!(
                        "model interval booster has {} features and {} outputs; expected {n} features and 2 outputs",
                        quantiles.n_features(),
                        quantiles.n_outputs()
                    )));
                }
                Some(IntervalModel {
                    quantiles,
                    calibration: c.clone(),
                })
            }
            (None, Some(_)) => {
                return Err(Error::invalid(
                    "truncated model: its metadata has a calibration but the file no quantiles.hbm",
                ))
            }
            _ => None,
        };
        Ok(HeightModel {
            meta,
            point,
            interval,
        })
    }

    /// The point model as XGBoost JSON, with roofline's feature names filled in, loadable by
    /// `xgboost.Booster().load_model()`. For a model with a city level, `level` is the
    /// region's ([`HeightModel::region_level`]): the booster's output `s` is then ln(height)
    /// above it, and the height `exp(log_level + weight × s)`, with both numbers in the
    /// learner's attributes (`roofline_log_level`, `roofline_structure_weight`;
    /// `Booster.attr(...)`).
    pub fn xgboost_json(&self, level: Option<super::RegionLevel>) -> Result<String> {
        let bytes = self.point.encode(ModelFormat::XgboostJson)?;
        let mut json: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::invalid(format!("XGBoost export: {e}")))?;
        let learner = json
            .get_mut("learner")
            .ok_or_else(|| Error::invalid("XGBoost export has no learner"))?;
        learner["feature_names"] = serde_json::json!(self.meta.feature_names);
        learner["feature_types"] = serde_json::json!(vec!["float"; self.meta.feature_names.len()]);
        if let (Some(_), Some(level)) = (&self.meta.level, level) {
            let attributes = learner
                .as_object_mut()
                .ok_or_else(|| Error::invalid("XGBoost export: learner is not an object"))?
                .entry("attributes")
                .or_insert_with(|| serde_json::json!({}));
            attributes["roofline_log_level"] =
                serde_json::json!(format!("{:.17e}", level.log_level));
            attributes["roofline_structure_weight"] =
                serde_json::json!(format!("{:.17e}", level.weight));
        }
        serde_json::to_string(&json).map_err(|e| Error::invalid(format!("XGBoost export: {e}")))
    }
}

/// What a file that cannot be a model file (a tar archive) looks like, for the error: JSON
/// (e.g. a `roofline export` or a metrics file), text, or nothing at all.
fn not_a_model(bytes: &[u8]) -> Option<&'static str> {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let looks_tar = bytes.len() >= 512 && &bytes[257..262] == b"ustar";
    match start.map(|i| bytes[i]) {
        None => Some("empty"),
        _ if looks_tar => None,
        Some(b'{') | Some(b'[') => Some("a JSON file (an XGBoost export or metrics?)"),
        _ if std::str::from_utf8(bytes).is_ok() => Some("a text file"),
        _ => Some("not a tar archive"),
    }
}

fn append(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    b.append_data(&mut h, name, data)
        .map_err(|e| Error::invalid(format!("model archive: {e}")))
        .at_kind(FileKind::Model, name)
}
