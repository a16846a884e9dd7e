//! Known heights from OpenStreetMap tags: what most cities without LiDAR do have for a few per
//! cent of their buildings. `height` is taken as it is (to the top of the roof, `roof-top`);
//! storey counts (`building:levels` + `roof:levels`) become metres by a storey height measured
//! on the city's own buildings tagged with both, so a city of tall storeys is not read as one
//! of low ones. Parts that start above ground (`min_height`, `building:min_level`) are not
//! building heights and are left out.
//!
//! The tags come as fields of their own (an Overpass GeoJSON export) or inside GDAL's OSM
//! driver's `other_tags` field (`"height"=>"12","building:levels"=>"4"`); no crate reads
//! that hstore text, so it is parsed here.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::OsmLabelConfig;
use crate::io::footprints::Footprints;
use crate::label::{Flag, LabelRow, Origin};
use crate::stats::percentile::percentile;

/// Buildings tagged with both a height and storeys needed to estimate the storey height.
pub const MIN_PAIRS: usize = 5;

/// Metres per storey when too few buildings carry both tags: a typical floor-to-floor height
/// of 3 m plus a share of the roof, as `height` is to the roof top.
pub const DEFAULT_STOREY_M: f64 = 3.2;

/// The tags read: as fields of their own, or keys of `other_tags`.
pub const TAGS: [&str; 5] = [
    "height",
    "building:levels",
    "roof:levels",
    "min_height",
    "building:min_level",
];

/// The OSM driver's field holding every tag without a field of its own.
pub const OTHER_TAGS: &str = "other_tags";

/// How the known heights were made, for the log and reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OsmSummary {
    /// Buildings with a `height` tag used.
    pub from_height: usize,
    /// Buildings with storeys only, converted.
    pub from_levels: usize,
    /// Metres per storey used.
    pub storey_m: f64,
    /// How `storey_m` was found: `config`, `estimated` or `default`.
    pub storey_from: String,
    /// Buildings tagged with both (the estimate's sample).
    pub pairs: usize,
    /// The middle half of height ÷ storeys over those buildings (m), when estimated.
    pub storey_iqr_m: Option<(f64, f64)>,
}

/// Footprint `i`'s values of [`TAGS`]: its own field where it has one, else the key of
/// `other_tags` (parsed once per footprint).
fn tags_of(fp: &Footprints, i: usize) -> BTreeMap<&'static str, String> {
    let other = fp
        .text
        .get(OTHER_TAGS)
        .and_then(|col| col[i].as_deref())
        .map(hstore_pairs)
        .unwrap_or_default();
    TAGS.iter()
        .filter_map(|&key| {
            fp.text
                .get(key)
                .and_then(|col| col[i].clone())
                .or_else(|| other.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
                .map(|v| (key, v))
        })
        .collect()
}

/// Key-value pairs of an hstore text: `"k"=>"v","k2"=>"v2"` (backslash escapes quotes).
pub fn hstore_pairs(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut strings = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut cur = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => cur.extend(chars.next()),
                '"' => break,
                _ => cur.push(c),
            }
        }
        strings.push(cur);
        if strings.len() == 2 {
            let v = strings.pop().expect("two");
            let k = strings.pop().expect("one");
            out.push((k, v));
        }
    }
    out
}

/// A length tag in metres: `12`, `12.5 m`, `12m`, `40 ft`, `40'`; the first of `12;14`.
/// `None` for anything else (`tall`, `5 floors`).
pub fn parse_length(v: &str) -> Option<f64> {
    let v = v.split(';').next()?.trim().to_lowercase();
    let (num, unit) = match v.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ',')) {
        Some(at) => (&v[..at], v[at..].trim()),
        None => (v.as_str(), ""),
    };
    let x: f64 = num.replace(',', ".").parse().ok()?;
    let m = match unit {
        "" | "m" | "meter" | "meters" | "metre" | "metres" => x,
        "ft" | "feet" | "'" => x * 0.3048,
        _ => return None,
    };
    (m.is_finite() && m > 0.0).then_some(m)
}

/// A storey count tag: a non-negative number (`4`, `4.5`), the first of `4;5`.
fn parse_count(v: &str) -> Option<f64> {
    let x: f64 = v.split(';').next()?.trim().replace(',', ".").parse().ok()?;
    (x.is_finite() && x >= 0.0).then_some(x)
}

/// One label per footprint from its tags, and what was done (logged by the caller's city).
pub fn osm_labels(fp: &Footprints, cfg: &OsmLabelConfig) -> (Vec<LabelRow>, OsmSummary) {
    struct Tags {
        height: Option<f64>,
        storeys: Option<f64>,
        raised: bool,
    }
    let tags: Vec<Tags> = (0..fp.len())
        .map(|i| {
            let t = tags_of(fp, i);
            let length = |key: &str| t.get(key).and_then(|v| parse_length(v));
            let count = |key: &str| t.get(key).and_then(|v| parse_count(v));
            let levels = count("building:levels");
            let roof = count("roof:levels");
            let raised = length("min_height").is_some_and(|m| m > 0.0)
                || count("building:min_level").is_some_and(|m| m > 0.0);
            Tags {
                height: length("height"),
                storeys: levels
                    .map(|l| l + roof.unwrap_or(0.0))
                    .filter(|s| *s >= 1.0),
                raised,
            }
        })
        .collect();
    let mut ratios: Vec<f64> = tags
        .iter()
        .filter(|t| !t.raised)
        .filter_map(|t| Some(t.height? / t.storeys?))
        .collect();
    let pairs = ratios.len();
    let (storey_m, storey_from, storey_iqr_m) = match cfg.storey_m {
        Some(m) => (m, "config", None),
        None if pairs >= MIN_PAIRS => {
            let mid = percentile(&mut ratios, 50.0).expect("pairs");
            let q1 = percentile(&mut ratios, 25.0).expect("pairs");
            let q3 = percentile(&mut ratios, 75.0).expect("pairs");
            (mid, "estimated", Some((q1, q3)))
        }
        None => (DEFAULT_STOREY_M, "default", None),
    };
    let mut summary = OsmSummary {
        from_height: 0,
        from_levels: 0,
        storey_m,
        storey_from: storey_from.into(),
        pairs,
        storey_iqr_m,
    };
    let rows = tags
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (height_m, origin) = match (t.height, t.storeys) {
                (Some(h), _) => (Some(h), Origin::OsmHeight),
                (None, Some(s)) => (Some(s * storey_m), Origin::OsmLevels),
                _ => (None, Origin::Measured),
            };
            let flag = if t.raised || !fp.passes_filter[i] {
                Flag::Filtered
            } else if height_m.is_some() {
                match origin {
                    Origin::OsmHeight => summary.from_height += 1,
                    _ => summary.from_levels += 1,
                }
                Flag::Ok
            } else {
                Flag::Missing
            };
            LabelRow {
                id: fp.ids[i].clone(),
                height_m,
                flag,
                lidar: None,
                origin,
            }
        })
        .collect();
    (rows, summary)
}

impl OsmSummary {
    /// One line for the log.
    pub fn describe(&self, path: &Path) -> String {
        let storey = match (&self.storey_iqr_m, self.storey_from.as_str()) {
            (Some((q1, q3)), _) => format!(
                "{:.2} m per storey (median of the {} buildings tagged with both; half within {q1:.2}–{q3:.2} m)",
                self.storey_m, self.pairs
            ),
            (None, "config") => format!("{:.2} m per storey (label.storey_m)", self.storey_m),
            _ => format!(
                "{:.2} m per storey (the default: only {} buildings tagged with both, {MIN_PAIRS} needed; set label.storey_m)",
                self.storey_m, self.pairs
            ),
        };
        format!(
            "{}: known heights from OpenStreetMap: {} from height tags, {} from storey counts × {storey}",
            path.display(),
            self.from_height,
            self.from_levels
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_as_mappers_write_them() {
        let pairs = hstore_pairs(r#""height"=>"12","building:levels"=>"4","name"=>"A \"B\"""#);
        assert_eq!(
            pairs,
            vec![
                ("height".into(), "12".into()),
                ("building:levels".into(), "4".into()),
                ("name".into(), "A \"B\"".into())
            ]
        );
        assert_eq!(parse_length("12"), Some(12.0));
        assert_eq!(parse_length("12.5 m"), Some(12.5));
        assert_eq!(parse_length("12,5m"), Some(12.5));
        assert!((parse_length("40 ft").unwrap() - 12.192).abs() < 1e-9);
        assert_eq!(parse_length("14;16"), Some(14.0));
        assert_eq!(parse_length("tall"), None);
        assert_eq!(parse_length("5 floors"), None);
        assert_eq!(parse_length("0"), None);
        assert_eq!(parse_count("4"), Some(4.0));
        assert_eq!(parse_count("-1"), None);
    }
}
