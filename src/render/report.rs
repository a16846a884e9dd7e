//! Writes a cross-validation to a folder: `metrics.json` (the one source of every number),
//! `predictions.parquet` (GeoParquet with footprints) and `predictions.csv` (every held-out
//! building, so each metric can be recomputed), `report.md` (the tables, rendered from the same
//! metrics, see [`super::markdown`]) and `report.html` (tables, plots and a 3D map, rendered from
//! the same summary and predictions table, see [`super::html`]).

use std::path::Path;

use std::collections::HashMap;

use geo::MultiPolygon;

use super::markdown::render_markdown;
use crate::crs::Crs;
use crate::error::{Error, Result};
use crate::eval::cv::CvOutput;
use crate::features::{reproject_many, CityFeatures};
use crate::io::output::{write_table, write_text};
use crate::io::table::{Column, Table};

/// `cities` are the cross-validated cities (their footprints give the predictions' geometry).
pub fn write_report(out: &CvOutput, cities: &[CityFeatures], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::file(dir, format!("cannot create folder: {e}")))?;
    let json =
        serde_json::to_string_pretty(&out.summary).map_err(|e| Error::invalid(e.to_string()))?;
    write_text(&dir.join("metrics.json"), &json)?;
    let table = predictions_table(out, cities)?;
    write_table(&table, &dir.join("predictions.parquet"))?;
    write_table(&table, &dir.join("predictions.csv"))?;
    write_text(&dir.join("report.md"), &render_markdown(out))?;
    write_text(
        &dir.join("report.html"),
        &super::html::render_html(&out.summary, &table)?,
    )?;
    Ok(())
}

/// Every held-out building with its footprint, in the cities' own CRS when they share one
/// (else WGS 84), with the same column names as `predict`'s output.
fn predictions_table(out: &CvOutput, cities: &[CityFeatures]) -> Result<Table> {
    let r = &out.rows;
    let crs = Crs::common_or_wgs84(cities.iter().map(|c| &c.source_crs))?;
    let mut geometry = vec![MultiPolygon::new(vec![]); r.len()];
    for c in cities {
        let index: HashMap<&str, usize> = c
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let rows: Vec<(usize, usize)> = r
            .iter()
            .enumerate()
            .filter(|(_, x)| x.city == c.city)
            .map(|(k, x)| {
                index.get(x.id.as_str()).map(|&i| (k, i)).ok_or_else(|| {
                    Error::invalid(format!("city '{}' has no building '{}'", c.city, x.id))
                })
            })
            .collect::<Result<_>>()?;
        let geoms: Vec<MultiPolygon<f64>> =
            rows.iter().map(|&(_, i)| c.geometries[i].clone()).collect();
        for ((k, _), g) in rows.iter().zip(reproject_many(&geoms, &c.crs, &crs)?) {
            geometry[*k] = g;
        }
    }
    let mut t = Table {
        crs: Some(crs.clone()),
        geometry: Some(geometry),
        ..Default::default()
    };
    t.push(Column::str("city", r.iter().map(|x| x.city.clone())));
    t.push(Column::str("id", r.iter().map(|x| x.id.clone())));
    t.push(Column::i64("fold", r.iter().map(|x| x.fold as i64)));
    t.push(Column::f64("height_m", r.iter().map(|x| x.truth_m)));
    t.push(Column::f64(
        "height_predicted_m",
        r.iter().map(|x| x.predicted_m),
    ));
    t.push(Column::f64("height_lo_m", r.iter().map(|x| x.lo_m)));
    t.push(Column::f64("height_hi_m", r.iter().map(|x| x.hi_m)));
    t.push(Column::f64("baseline_m", r.iter().map(|x| x.baseline_m)));
    t.push(Column::f64("area_m2", r.iter().map(|x| x.area_m2)));
    t.push(Column::bool("ood", r.iter().map(|x| x.ood)));
    t.push(Column::i64(
        "ood_feature_count",
        r.iter().map(|x| x.ood_feature_count as i64),
    ));
    t.push(Column::str(
        "ood_feature_names",
        r.iter().map(|x| x.ood_feature_names.clone()),
    ));
    t.push(Column::f64(
        "ood_gain_share",
        r.iter().map(|x| x.ood_gain_share),
    ));
    t.push(Column::str(
        "scenario",
        r.iter().map(|x| x.scenario.clone()),
    ));
    t.push(Column::str("source", r.iter().map(|x| x.source.clone())));
    t.metadata.insert(
        "roofline".into(),
        serde_json::json!({
            "table": "cv_predictions",
            "label": out.summary.label,
            "scheme": out.summary.scheme,
            "crs": crs.label,
            "height_unit": "m",
            "columns": {
                "height_m": "the measured height (the held-out label)",
                "height_predicted_m": "the prediction of a model that never saw this building",
                "height_lo_m": "lower bound of the model's 90 % interval",
                "height_hi_m": "upper bound of the model's 90 % interval",
                "baseline_m": "median label of the fold's training buildings",
                "ood": "some feature lies outside the range seen in training",
                "ood_feature_count": "how many features lie outside the training range",
                "ood_feature_names": "those features, comma-separated",
            },
        })
        .to_string(),
    );
    Ok(t)
}
