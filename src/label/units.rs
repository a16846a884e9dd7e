//! Heights that are valid numbers but not metres above ground: centimetres, millimetres, storey
//! counts, absolute roof altitudes (ground field not set), feet. Each trains a model without
//! complaint and gives plausible-looking wrong numbers ("training error: MAE 0.40 m" on heights
//! in centimetres), so a city's attribute labels are looked at as a whole before anything uses
//! them, and a likely mistake stops the run with the config key that fixes it.
//!
//! The rules read the distribution of a city's heights, not single buildings (those are
//! flagged `implausible` one by one): a city whose median building is 450 "m" tall is in
//! centimetres, whatever its tallest one. Feet are the exception: a median of 16 ft is a
//! plausible 16 m, so where the unit is not said, feet are judged by where the heights come
//! from (a field named in feet, a CRS in feet, a city in the United States) and the user is
//! asked to say the unit.

use crate::config::{AttributeLabelConfig, LengthUnit, SurveyLabelConfig};

/// What a config says of its heights: the field, a ground field, the unit (if said), and
/// whether the user vouched for them. Attribute labels and surveys say the same things.
#[derive(Clone, Copy, Debug)]
pub struct Said<'a> {
    /// The field holding the heights.
    pub field: &'a str,
    /// The field holding the ground altitude, subtracted.
    pub ground_field: Option<&'a str>,
    /// The unit, when said.
    pub unit: Option<LengthUnit>,
    /// `heights_checked = true`.
    pub heights_checked: bool,
}

impl<'a> From<&'a AttributeLabelConfig> for Said<'a> {
    fn from(c: &'a AttributeLabelConfig) -> Said<'a> {
        Said {
            field: &c.field,
            ground_field: c.ground_field.as_deref(),
            unit: c.unit,
            heights_checked: c.heights_checked,
        }
    }
}

impl<'a> From<&'a SurveyLabelConfig> for Said<'a> {
    fn from(c: &'a SurveyLabelConfig) -> Said<'a> {
        Said {
            field: &c.field,
            ground_field: None,
            unit: c.unit,
            heights_checked: c.heights_checked,
        }
    }
}

/// Fewest heights the rules judge a city by.
pub const MIN_HEIGHTS: usize = 20;

/// What a city's heights look like, in the unit the config says (converted to metres).
#[derive(Clone, Debug, PartialEq)]
pub struct HeightShape {
    /// Heights judged.
    pub n: usize,
    /// 10th, 50th and 90th percentile (m).
    pub p10: f64,
    /// See `p10`.
    pub median: f64,
    /// See `p10`.
    pub p90: f64,
    /// Share above 150 m: skyscrapers, rare in any city.
    pub above_150m: f64,
    /// Share of whole numbers from 1 to 9: storey counts.
    pub small_integers: f64,
}

impl HeightShape {
    /// The shape of `heights` (metres); `None` below [`MIN_HEIGHTS`] finite positive values.
    pub fn of(heights: &[f64]) -> Option<HeightShape> {
        let mut h: Vec<f64> = heights
            .iter()
            .copied()
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        if h.len() < MIN_HEIGHTS {
            return None;
        }
        h.sort_by(f64::total_cmp);
        let p = |q: f64| crate::stats::percentile::percentile_sorted(&h, q);
        let n = h.len() as f64;
        Some(HeightShape {
            n: h.len(),
            p10: p(10.0),
            median: p(50.0),
            p90: p(90.0),
            above_150m: h.iter().filter(|v| **v > 150.0).count() as f64 / n,
            small_integers: h
                .iter()
                .filter(|v| v.fract() == 0.0 && (1.0..=9.0).contains(*v))
                .count() as f64
                / n,
        })
    }

    /// The likely mistake, as (what the heights look like, the config key that fixes it), or
    /// `None` when they look like metres above ground.
    pub fn suspect(&self, cfg: Said<'_>) -> Option<(String, String)> {
        let m = self.median;
        let unit_hint = |u: &str| format!("set `unit = \"{u}\"` in [label]");
        // Altitudes first: ground (tens to hundreds of metres) plus a building is a narrow
        // band far from zero, where heights in centimetres spread as widely as heights do
        // (a tenth of a city's buildings under 0.6 of its median: sheds, garages).
        if cfg.ground_field.is_none() && self.p10 > 25.0 && self.p10 > 0.6 * m {
            return Some((
                format!(
                    "nine in ten heights above {:.0} m, median {m:.0} m, and no ground subtracted: absolute roof altitudes?",
                    self.p10
                ),
                "set `ground_field` in [label] to the field holding the ground altitude".into(),
            ));
        }
        // Cities' median buildings stand 3–25 m: 300–2 500 in centimetres, 3 000–25 000 in
        // millimetres.
        if m > 2800.0 {
            return Some((
                format!("median height {m:.0} m: millimetres?"),
                unit_hint("mm"),
            ));
        }
        if m > 150.0 || self.above_150m > 0.5 {
            return Some((
                format!(
                    "median height {m:.0} m, {:.0} % above 150 m: centimetres?",
                    100.0 * self.above_150m
                ),
                unit_hint("cm"),
            ));
        }
        if self.small_integers > 0.9
            && m <= 6.0
            && cfg.unit.unwrap_or_default() == LengthUnit::Metre
        {
            return Some((
                format!(
                    "{:.0} % of the heights are whole numbers from 1 to 9 (median {m:.0}): storey counts?",
                    100.0 * self.small_integers
                ),
                "convert storeys to metres before (roofline reads heights, not storeys)".into(),
            ));
        }
        None
    }
}

/// Where a city's heights come from: what tells feet, which their distribution cannot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Provenance {
    /// The footprints' centre (longitude, latitude in degrees), when it could be computed.
    pub lon_lat: Option<(f64, f64)>,
    /// The footprint file's CRS, e.g. `EPSG:2229`.
    pub crs_label: String,
    /// Metres per unit of that CRS (0.3048 for international feet, 0.3048006 for US feet).
    pub crs_unit_m: f64,
}

/// The United States, coarsely (to tens of kilometres; lon, lat): the one large country whose
/// building registers record heights in feet. It only asks the user to say the unit, never
/// converts, so a town at the Canadian or Mexican border taken for either side costs a question.
const CONTIGUOUS_US: [(f64, f64); 41] = [
    (-124.8, 48.4),
    (-123.3, 49.0),
    (-95.2, 49.0),
    (-89.6, 48.0),
    (-84.8, 46.5),
    (-82.4, 45.3),
    (-82.5, 42.6),
    (-83.1, 42.0),
    (-79.8, 42.5),
    (-79.0, 43.3),
    (-76.4, 43.6),
    (-74.7, 45.0),
    (-71.5, 45.0),
    (-70.0, 46.7),
    (-69.2, 47.45),
    (-67.8, 47.1),
    (-67.8, 45.7),
    (-66.9, 44.8),
    (-69.5, 43.0),
    (-69.8, 41.2),
    (-73.5, 40.3),
    (-75.5, 35.0),
    (-80.0, 32.0),
    (-79.8, 25.0),
    (-81.8, 24.4),
    (-83.0, 25.0),
    (-84.5, 29.5),
    (-89.5, 28.8),
    (-94.0, 29.3),
    (-97.2, 25.9),
    (-99.5, 27.5),
    (-101.4, 29.8),
    (-103.0, 29.0),
    (-106.5, 31.8),
    (-108.2, 31.33),
    (-111.1, 31.33),
    (-114.8, 32.5),
    (-117.1, 32.53),
    (-118.8, 32.3),
    (-121.5, 34.2),
    (-125.0, 40.0),
];
/// Alaska (west of Yukon; the panhandle) and Hawaii, as boxes `[west, south, east, north]`.
const OTHER_US: [[f64; 4]; 3] = [
    [-170.0, 51.0, -141.0, 71.5],
    [-141.0, 54.6, -130.0, 59.5],
    [-160.3, 18.9, -154.8, 22.3],
];

/// True when (lon, lat) lies in the United States (coarsely, see [`CONTIGUOUS_US`]).
fn in_united_states(lon: f64, lat: f64) -> bool {
    use geo::Contains;
    let outline = geo::Polygon::new(geo::LineString::from(CONTIGUOUS_US.to_vec()), vec![]);
    outline.contains(&geo::Point::new(lon, lat))
        || OTHER_US
            .iter()
            .any(|b| (b[0]..=b[2]).contains(&lon) && (b[1]..=b[3]).contains(&lat))
}

/// Why heights whose unit was not said are likely feet, or `None`.
fn feet_likely(cfg: Said<'_>, from: &Provenance) -> Option<String> {
    if cfg.unit.is_some() {
        return None;
    }
    let named_in_feet = |f: &str| {
        f.to_ascii_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|t| matches!(t, "ft" | "feet" | "foot"))
    };
    if let Some(f) = std::iter::once(cfg.field)
        .chain(cfg.ground_field)
        .find(|f| named_in_feet(f))
    {
        return Some(format!("the field '{f}' is named in feet"));
    }
    if (from.crs_unit_m - 0.3048).abs() < 1e-3 {
        return Some(format!(
            "the footprints' CRS {} measures in feet",
            from.crs_label
        ));
    }
    let (lon, lat) = from.lon_lat?;
    in_united_states(lon, lat).then(|| {
            "the footprints lie in the United States, where building heights are mostly recorded in feet".into()
        })
}

/// The one-line refusal for a city's attribute heights, or `None` when they look like metres
/// (or `heights_checked = true` says they are).
pub fn check<'a>(heights: &[f64], said: impl Into<Said<'a>>, from: &Provenance) -> Option<String> {
    let cfg: Said<'a> = said.into();
    if cfg.heights_checked || heights.is_empty() {
        return None;
    }
    if let Some(shape) = HeightShape::of(heights) {
        if let Some((what, fix)) = shape.suspect(cfg) {
            return Some(format!(
                "label field '{}' does not look like heights in metres above ground: {what} ({} heights); {fix}, or `heights_checked = true` if they are right",
                cfg.field, shape.n
            ));
        }
    }
    let why = feet_likely(cfg, from)?;
    Some(format!(
        "label field '{}' may hold feet, and no unit is said: {why}; set `unit = \"ft\"` in [label] (or `unit = \"m\"` if they are metres)",
        cfg.field
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AttributeLabelConfig {
        AttributeLabelConfig {
            name: "roof-p70".into(),
            field: "h".into(),
            ground_field: None,
            filter: None,
            unit: None,
            heights_checked: false,
        }
    }

    fn europe() -> Provenance {
        Provenance {
            lon_lat: Some((4.36, 52.0)),
            crs_label: "EPSG:28992".into(),
            crs_unit_m: 1.0,
        }
    }

    #[test]
    fn feet_are_asked_for_where_they_are_likely_and_only_there() {
        let heights: Vec<f64> = (0..200).map(|i| 10.0 + (i % 40) as f64 * 0.9).collect();
        assert_eq!(check(&heights, &cfg(), &europe()), None);
        let la = Provenance {
            lon_lat: Some((-118.46, 33.99)),
            crs_label: "EPSG:4326".into(),
            crs_unit_m: 1.0,
        };
        let msg = check(&heights, &cfg(), &la).unwrap();
        assert!(
            msg.contains("United States") && msg.contains("unit = \"ft\""),
            "{msg}"
        );
        // New York, Chicago, Miami, Seattle, Houston, Honolulu, Anchorage, Juneau too;
        // Vancouver, Toronto, Montreal, Tijuana, Mexico City, London not.
        for (lon, lat, asked) in [
            (-74.0, 40.71, true),
            (-87.63, 41.88, true),
            (-80.19, 25.76, true),
            (-122.33, 47.61, true),
            (-95.37, 29.76, true),
            (-157.86, 21.31, true),
            (-149.9, 61.2, true),
            (-134.42, 58.3, true),
            (-123.12, 49.28, false),
            (-79.38, 43.65, false),
            (-73.57, 45.5, false),
            (-117.04, 32.51, false),
            (-99.13, 19.43, false),
            (-0.13, 51.5, false),
        ] {
            let p = Provenance {
                lon_lat: Some((lon, lat)),
                ..la.clone()
            };
            assert_eq!(check(&heights, &cfg(), &p).is_some(), asked, "{lon} {lat}");
        }
        // A unit said, either way, is taken.
        for unit in [LengthUnit::Foot, LengthUnit::Metre] {
            let said = AttributeLabelConfig {
                unit: Some(unit),
                ..cfg()
            };
            assert_eq!(check(&heights, &said, &la), None);
        }
        // A CRS in US survey feet, and a field named in feet, anywhere.
        let state_plane = Provenance {
            crs_unit_m: 0.304_800_609_6,
            crs_label: "EPSG:2229".into(),
            ..europe()
        };
        assert!(check(&heights, &cfg(), &state_plane)
            .unwrap()
            .contains("EPSG:2229"));
        let named = AttributeLabelConfig {
            field: "HEIGHT_FT".into(),
            ..cfg()
        };
        assert!(check(&heights, &named, &europe())
            .unwrap()
            .contains("HEIGHT_FT"));
        // "shaft" or "left" are not feet.
        let not_named = AttributeLabelConfig {
            field: "h_left".into(),
            ..cfg()
        };
        assert_eq!(check(&heights, &not_named, &europe()), None);
    }

    #[test]
    fn metres_pass_and_other_units_are_named() {
        let metres: Vec<f64> = (0..200).map(|i| 3.0 + (i % 40) as f64 * 0.7).collect();
        assert_eq!(check(&metres, &cfg(), &europe()), None);
        let cm: Vec<f64> = metres.iter().map(|v| v * 100.0).collect();
        assert!(check(&cm, &cfg(), &europe())
            .unwrap()
            .contains("unit = \"cm\""));
        // A high-rise centre in centimetres (median 20 m) is not taken for millimetres.
        let tall_cm: Vec<f64> = (0..200).map(|i| 1000.0 + (i % 60) as f64 * 50.0).collect();
        assert!(check(&tall_cm, &cfg(), &europe())
            .unwrap()
            .contains("unit = \"cm\""));
        let mm: Vec<f64> = metres.iter().map(|v| v * 1000.0).collect();
        assert!(check(&mm, &cfg(), &europe())
            .unwrap()
            .contains("unit = \"mm\""));
        let storeys: Vec<f64> = (0..200).map(|i| (1 + i % 5) as f64).collect();
        assert!(check(&storeys, &cfg(), &europe())
            .unwrap()
            .contains("storey"));
        let altitudes: Vec<f64> = metres.iter().map(|v| v + 40.0).collect();
        assert!(check(&altitudes, &cfg(), &europe())
            .unwrap()
            .contains("ground_field"));
        // A ground field subtracted: altitudes are not suspected.
        let with_ground = AttributeLabelConfig {
            ground_field: Some("g".into()),
            ..cfg()
        };
        assert_eq!(check(&altitudes, &with_ground, &europe()), None);
        // The user says they are right.
        let trusted = AttributeLabelConfig {
            heights_checked: true,
            ..cfg()
        };
        assert_eq!(check(&cm, &trusted, &europe()), None);
        // Too few to judge.
        assert_eq!(check(&cm[..10], &cfg(), &europe()), None);
    }
}
