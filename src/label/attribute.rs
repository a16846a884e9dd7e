//! Labels taken from a footprint attribute (BD TOPO `HAUTEUR`, 3DBAG `h_70p`, …).

use crate::config::AttributeLabelConfig;
use crate::io::footprints::Footprints;
use crate::label::{Flag, LabelRow, Origin};

/// One label per footprint: `field` (minus `ground_field`) in metres, flagged `filtered`, `missing` or
/// `not_positive` where unusable.
pub fn attribute_labels(fp: &Footprints, cfg: &AttributeLabelConfig) -> Vec<LabelRow> {
    let top = &fp.numeric[&cfg.field];
    let ground = cfg.ground_field.as_ref().map(|g| &fp.numeric[g]);
    let m = cfg.unit.unwrap_or_default().metres();
    (0..fp.len())
        .map(|i| {
            let h = match (top[i], ground.map(|g| g[i])) {
                (Some(t), None) => Some(t * m),
                (Some(t), Some(Some(g))) => Some((t - g) * m),
                _ => None,
            };
            let flag = if !fp.passes_filter[i] {
                Flag::Filtered
            } else {
                match h {
                    None => Flag::Missing,
                    Some(v) if v <= 0.0 => Flag::NotPositive,
                    Some(_) => Flag::Ok,
                }
            };
            LabelRow {
                id: fp.ids[i].clone(),
                height_m: h,
                flag,
                lidar: None,
                origin: Origin::Measured,
            }
        })
        .collect()
}
