//! Heights that are valid numbers but not metres above ground: centimetres, millimetres, storey
//! counts, absolute roof altitudes (ground field not set), feet. Each trains a model without
//! complaint and gives plausible-looking wrong numbers ("training error: MAE 0.40 m" on heights
//! in centimetres), so a city's attribute labels are looked at as a whole before anything uses
//! them, and a likely mistake stops the run with the config key that fixes it.
//!
//! The rules read the distribution of a city's heights, not single buildings (those are
//! flagged `implausible` one by one): a city whose median building is 450 "m" tall is in
//! centimetres, whatever its tallest one.

use crate::config::{AttributeLabelConfig, LengthUnit};

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
    pub fn suspect(&self, cfg: &AttributeLabelConfig) -> Option<(String, String)> {
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
        if self.small_integers > 0.9 && m <= 6.0 && cfg.unit == LengthUnit::Metre {
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

/// The one-line refusal for a city's attribute heights, or `None` when they look like metres
/// (or `heights_checked = true` says they are).
pub fn check(heights: &[f64], cfg: &AttributeLabelConfig) -> Option<String> {
    if cfg.heights_checked {
        return None;
    }
    let shape = HeightShape::of(heights)?;
    let (what, fix) = shape.suspect(cfg)?;
    Some(format!(
        "label field '{}' does not look like heights in metres above ground: {what} ({} heights); {fix}, or `heights_checked = true` if they are right",
        cfg.field, shape.n
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
            unit: LengthUnit::Metre,
            heights_checked: false,
        }
    }

    #[test]
    fn metres_pass_and_other_units_are_named() {
        let metres: Vec<f64> = (0..200).map(|i| 3.0 + (i % 40) as f64 * 0.7).collect();
        assert_eq!(check(&metres, &cfg()), None);
        let cm: Vec<f64> = metres.iter().map(|v| v * 100.0).collect();
        assert!(check(&cm, &cfg()).unwrap().contains("unit = \"cm\""));
        // A high-rise centre in centimetres (median 20 m) is not taken for millimetres.
        let tall_cm: Vec<f64> = (0..200).map(|i| 1000.0 + (i % 60) as f64 * 50.0).collect();
        assert!(check(&tall_cm, &cfg()).unwrap().contains("unit = \"cm\""));
        let mm: Vec<f64> = metres.iter().map(|v| v * 1000.0).collect();
        assert!(check(&mm, &cfg()).unwrap().contains("unit = \"mm\""));
        let storeys: Vec<f64> = (0..200).map(|i| (1 + i % 5) as f64).collect();
        assert!(check(&storeys, &cfg()).unwrap().contains("storey"));
        let altitudes: Vec<f64> = metres.iter().map(|v| v + 40.0).collect();
        assert!(check(&altitudes, &cfg()).unwrap().contains("ground_field"));
        // A ground field subtracted: altitudes are not suspected.
        let with_ground = AttributeLabelConfig {
            ground_field: Some("g".into()),
            ..cfg()
        };
        assert_eq!(check(&altitudes, &with_ground), None);
        // The user says they are right.
        let trusted = AttributeLabelConfig {
            heights_checked: true,
            ..cfg()
        };
        assert_eq!(check(&cm, &trusted), None);
        // Too few to judge.
        assert_eq!(check(&cm[..10], &cfg()), None);
    }
}
