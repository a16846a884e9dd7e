//! Joining a plan's partitions into the table a single process writes: rows back in the city's
//! footprint order (those without a usable polygon last), the same columns and metadata, and
//! for predictions the region's local recalibration, which needs every job's rows at once.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::output::read_table;
use crate::io::table::{concat_union, ColumnData, Table};
use crate::model::local::{recalibrate, LocalOptions, LocalSummary};
use crate::model::predict::Source;

use super::run::{HELPER_COLUMNS, PLAN_METADATA};
use super::{partition_path, Job, Plan, Stage};

/// The stages whose partitions exist for every job of a plan.
pub fn complete_stages(plan_dir: &Path, plan: &Plan) -> Vec<Stage> {
    Stage::ALL
        .into_iter()
        .filter(|s| {
            plan.jobs
                .iter()
                .all(|j| partition_path(plan_dir, *s, j.id).is_file())
        })
        .collect()
}

/// The merged table of one stage, and the recalibration's summary for predictions.
pub fn merge(plan_dir: &Path, stage: Stage) -> Result<(Table, Option<LocalSummary>)> {
    let plan = Plan::load(plan_dir)?;
    let mut parts = Vec::new();
    let mut place: Vec<Option<(usize, usize)>> = vec![None; plan.footprints];
    let mut unusable = Vec::new();
    let mut offset = 0;
    for s in &plan.jobs {
        let (job, _) = Job::load(&plan_dir.join(&s.path))?;
        let path = partition_path(plan_dir, stage, job.id);
        if !path.is_file() {
            return Err(Error::file(
                &path,
                format!(
                    "is missing: job {} has not written its {} (run it with --job {})",
                    job.id,
                    stage.as_str(),
                    plan_dir.join(&s.path).display()
                ),
            ));
        }
        let t = read_table(&path)?;
        let expect = job.owned.len()
            + if job.owns_without_geometry {
                job.without_geometry
            } else {
                0
            };
        if t.n_rows() != expect {
            return Err(Error::file(
                &path,
                format!(
                    "has {} rows, job {} owns {expect}: run the job again",
                    t.n_rows(),
                    job.id
                ),
            ));
        }
        for (r, &i) in job.owned.iter().enumerate() {
            if i >= place.len() || place[i].is_some() {
                return Err(Error::invalid(format!(
                    "building {i} is owned by two jobs or is not in the city: make the plan again"
                )));
            }
            place[i] = Some((parts.len(), offset + r));
        }
        unusable.extend(offset + job.owned.len()..offset + t.n_rows());
        offset += t.n_rows();
        parts.push(t);
    }
    if let Some(i) = place.iter().position(Option::is_none) {
        return Err(Error::invalid(format!(
            "building {i} is owned by no job: make the plan again"
        )));
    }
    let meta = parts
        .first()
        .map(|t| t.metadata.clone())
        .unwrap_or_default();
    let crs = parts.first().and_then(|t| t.crs.clone());
    let all = concat_union(parts)?;
    let rows: Vec<Option<usize>> = place
        .iter()
        .map(|p| p.map(|(_, r)| r))
        .chain(unusable.into_iter().map(Some))
        .collect();
    let mut out = all.take_rows(&rows);
    out.crs = crs;
    out.metadata = Default::default();
    if let Some(m) = meta.get("roofline") {
        out.metadata
            .insert("roofline".into(), fix_counts(m, &plan, stage));
    }
    let mut summary = None;
    if stage == Stage::Predictions {
        let wants = meta
            .get(PLAN_METADATA)
            .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
            .and_then(|v| v["recalibrate"].as_bool())
            .unwrap_or(false);
        if wants {
            summary = recalibrate_merged(&mut out, plan.footprints)?;
        }
        out.columns
            .retain(|c| !HELPER_COLUMNS.contains(&c.name.as_str()));
    }
    Ok((out, summary))
}

/// The building counts of a features table's metadata, which each partition gives for itself.
fn fix_counts(meta: &str, plan: &Plan, stage: Stage) -> String {
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(meta) else {
        return meta.to_string();
    };
    if stage == Stage::Features {
        if let Some(cities) = v["cities"].as_array_mut() {
            for c in cities {
                c["buildings"] = (plan.footprints + plan.without_geometry).into();
                c["without_geometry"] = plan.without_geometry.into();
            }
        }
    }
    v.to_string()
}

fn f64_column(t: &Table, name: &str) -> Result<Vec<f64>> {
    match t.column(name).map(|c| &c.data) {
        Some(ColumnData::F64(v)) => Ok(v.iter().map(|x| x.unwrap_or(f64::NAN)).collect()),
        _ => Err(Error::invalid(format!(
            "predictions partitions lack the number column '{name}': run the jobs again"
        ))),
    }
}

/// `roofline predict`'s local recalibration on the merged rows (the first `n`, the usable
/// footprints in city order): the model's prediction corrected by every known building.
fn recalibrate_merged(t: &mut Table, n: usize) -> Result<Option<LocalSummary>> {
    let head = |v: Vec<f64>| v[..n].to_vec();
    let predicted = head(f64_column(t, "height_predicted_m")?);
    let lo = head(f64_column(t, HELPER_COLUMNS[0])?);
    let hi = head(f64_column(t, HELPER_COLUMNS[1])?);
    let xs = head(f64_column(t, HELPER_COLUMNS[2])?);
    let ys = head(f64_column(t, HELPER_COLUMNS[3])?);
    let height = f64_column(t, "height_m")?;
    let source: Vec<String> = match t.column("source").map(|c| &c.data) {
        Some(ColumnData::Str(v)) => v.iter().map(|s| s.clone().unwrap_or_default()).collect(),
        _ => return Err(Error::invalid("predictions partitions lack 'source'")),
    };
    let open = Source::Predicted.as_str();
    let known: Vec<Option<f64>> = (0..n)
        .map(|i| (source[i] != open).then_some(height[i]))
        .collect();
    if !known.iter().any(Option::is_some) {
        return Ok(None);
    }
    let centroids: Vec<[f64; 2]> = xs.iter().zip(&ys).map(|(x, y)| [*x, *y]).collect();
    let r = recalibrate(
        &predicted,
        &lo,
        &hi,
        &centroids,
        &known,
        &LocalOptions::default(),
    );
    for c in &mut t.columns {
        let pick: Option<&Vec<f64>> = match c.name.as_str() {
            "height_m" => Some(&r.height_m),
            "height_lo_m" => Some(&r.lo_m),
            "height_hi_m" => Some(&r.hi_m),
            _ => None,
        };
        match (&mut c.data, pick) {
            (ColumnData::F64(v), Some(new)) => {
                for i in 0..n {
                    if source[i] == open {
                        v[i] = new[i].is_finite().then_some(new[i]);
                    }
                }
            }
            (ColumnData::Str(v), None) if c.name == "source" => {
                for (i, s) in v.iter_mut().enumerate().take(n) {
                    if source[i] == open {
                        *s = Some(Source::Recalibrated.as_str().to_string());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(Some(r.summary))
}
