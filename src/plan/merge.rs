//! Joining a plan's partitions into the table a single process writes: rows back in the city's
//! footprint order (those without a usable polygon last), the same columns and metadata, and
//! for predictions the region's local recalibration, which needs every job's rows at once.

use std::path::Path;

use ndarray::Array2;

use crate::error::{Error, Result};
use crate::io::output::read_table;
use crate::io::table::{concat_union, ColumnData, Table};
use crate::model::anchor::{anchor, HeightRows, Source};
use crate::model::level::{area_spread_of, bounds_at, height_at};
use crate::model::local::{LocalOptions, LocalSummary, Sites};
use crate::model::predict::column;

use super::run::{
    MergeSteps, PlanLevel, FEATURE_PREFIX, HELPER_COLUMNS, LEVEL_COLUMNS, PLAN_METADATA,
};
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
                    "is missing: job {} has not written its {} (run it with `job` {})",
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
        let steps: MergeSteps = match meta.get(PLAN_METADATA) {
            None => MergeSteps::default(),
            Some(m) => serde_json::from_str(m).map_err(|_| {
                Error::invalid(
                    "predictions partitions were written by another roofline version: run the jobs again",
                )
            })?,
        };
        if let Some(level) = &steps.level {
            relevel_merged(&mut out, plan.footprints, level)?;
        }
        if let Some(opts) = steps.recalibrate {
            summary = recalibrate_merged(&mut out, plan.footprints, &opts)?;
        }
        out.columns.retain(|c| {
            !HELPER_COLUMNS.contains(&c.name.as_str())
                && !LEVEL_COLUMNS.contains(&c.name.as_str())
                && !c.name.starts_with(FEATURE_PREFIX)
        });
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

/// The merged rows (the first `n`) at the whole region's level, as `roofline predict` puts
/// them: each job predicted at its own tile's level, from its buildings alone. The point and
/// interval are made again from the structure the jobs kept, with the same arithmetic (the
/// spread cap's factor from every row's structure and area), so the heights are the single
/// run's to the bit; rows the region measured keep their height.
fn relevel_merged(t: &mut Table, n: usize, level: &PlanLevel) -> Result<()> {
    let head = |v: Vec<f64>| v[..n].to_vec();
    let structure = head(f64_column(t, LEVEL_COLUMNS[0])?);
    let lo_s = head(f64_column(t, LEVEL_COLUMNS[1])?);
    let hi_s = head(f64_column(t, LEVEL_COLUMNS[2])?);
    let feature = head(f64_column(t, LEVEL_COLUMNS[3])?);
    let l = level.model.log_level_from_values(&feature);
    let factor = match &level.model.spread_cap {
        Some(cap) => cap.factor(
            area_spread_of(&head(f64_column(t, HELPER_COLUMNS[4])?)),
            &structure,
        ),
        None => 1.0,
    };
    let point: Vec<f64> = structure
        .iter()
        .map(|&s| height_at(l, factor * s))
        .collect();
    // The interval as the single run makes it (none without an interval model).
    let (plo, phi): (Vec<f64>, Vec<f64>) = (0..n)
        .map(|i| match level.intervals {
            Some(log) => bounds_at(log, l, lo_s[i], hi_s[i], point[i]),
            None => (f64::NAN, f64::NAN),
        })
        .unzip();
    let predicted_rows: Vec<bool> = match t.column(column::SOURCE).map(|c| &c.data) {
        Some(ColumnData::Str(v)) => v[..n]
            .iter()
            .map(|s| s.as_deref() == Some(Source::Predicted.as_str()))
            .collect(),
        _ => return Err(Error::invalid("predictions partitions lack 'source'")),
    };
    let number =
        |v: &[f64]| -> Vec<Option<f64>> { v.iter().map(|x| x.is_finite().then_some(*x)).collect() };
    let mut height = head(f64_column(t, column::HEIGHT)?);
    let mut height_lo = head(f64_column(t, column::LO)?);
    let mut height_hi = head(f64_column(t, column::HI)?);
    for i in (0..n).filter(|&i| predicted_rows[i]) {
        height[i] = point[i];
        height_lo[i] = plo[i];
        height_hi[i] = phi[i];
    }
    t.set_head(column::PREDICTED, ColumnData::F64(number(&point)))?;
    t.set_head(HELPER_COLUMNS[0], ColumnData::F64(number(&plo)))?;
    t.set_head(HELPER_COLUMNS[1], ColumnData::F64(number(&phi)))?;
    t.set_head(column::HEIGHT, ColumnData::F64(number(&height)))?;
    t.set_head(column::LO, ColumnData::F64(number(&height_lo)))?;
    t.set_head(column::HI, ColumnData::F64(number(&height_hi)))?;
    Ok(())
}

/// `roofline predict`'s local recalibration on the merged rows (the first `n`, the usable
/// footprints in city order): the model's prediction corrected by every known building.
fn recalibrate_merged(
    t: &mut Table,
    n: usize,
    opts: &LocalOptions,
) -> Result<Option<LocalSummary>> {
    let head = |v: Vec<f64>| v[..n].to_vec();
    let predicted = head(f64_column(t, column::PREDICTED)?);
    let lo = head(f64_column(t, HELPER_COLUMNS[0])?);
    let hi = head(f64_column(t, HELPER_COLUMNS[1])?);
    let xs = head(f64_column(t, HELPER_COLUMNS[2])?);
    let ys = head(f64_column(t, HELPER_COLUMNS[3])?);
    let area = head(f64_column(t, HELPER_COLUMNS[4])?);
    let feature_columns: Vec<Vec<f64>> = t
        .columns
        .iter()
        .filter(|c| c.name.starts_with(FEATURE_PREFIX))
        .map(|c| f64_column(t, &c.name).map(head))
        .collect::<Result<_>>()?;
    let features =
        Array2::from_shape_fn((n, feature_columns.len()), |(i, j)| feature_columns[j][i]);
    let mut height = head(f64_column(t, column::HEIGHT)?);
    let mut height_lo = head(f64_column(t, column::LO)?);
    let mut height_hi = head(f64_column(t, column::HI)?);
    let mut source: Vec<Source> = match t.column(column::SOURCE).map(|c| &c.data) {
        Some(ColumnData::Str(v)) => v[..n]
            .iter()
            .map(|s| {
                let s = s.as_deref().unwrap_or_default();
                Source::parse(s).ok_or_else(|| {
                    Error::invalid(format!(
                        "predictions partitions hold an unknown source '{s}': run the jobs again"
                    ))
                })
            })
            .collect::<Result<_>>()?,
        _ => return Err(Error::invalid("predictions partitions lack 'source'")),
    };
    let centroids: Vec<[f64; 2]> = xs.iter().zip(&ys).map(|(x, y)| [*x, *y]).collect();
    let rows = HeightRows {
        predicted_m: &predicted,
        predicted_lo_m: &lo,
        predicted_hi_m: &hi,
        height_m: &mut height,
        lo_m: &mut height_lo,
        hi_m: &mut height_hi,
        source: &mut source,
    };
    let sites = Sites {
        centroids: &centroids,
        area_m2: &area,
        features: features.view(),
    };
    let Some(summary) = anchor(rows, sites, opts) else {
        return Ok(None);
    };
    let number =
        |v: &[f64]| -> Vec<Option<f64>> { v.iter().map(|x| x.is_finite().then_some(*x)).collect() };
    t.set_head(column::HEIGHT, ColumnData::F64(number(&height)))?;
    t.set_head(column::LO, ColumnData::F64(number(&height_lo)))?;
    t.set_head(column::HI, ColumnData::F64(number(&height_hi)))?;
    t.set_head(
        column::SOURCE,
        ColumnData::Str(source.iter().map(|s| Some(s.as_str().into())).collect()),
    )?;
    Ok(Some(summary))
}
