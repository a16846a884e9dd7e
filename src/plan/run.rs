//! Running one job of a plan: the stage is computed on every building the job reads, then
//! only the owned rows (and, for job 0, the footprints without a usable polygon) are kept.

use std::collections::BTreeMap;

use crate::config::CityConfig;
use crate::crs::Crs;
use crate::error::{Error, Result};
use crate::features::sparse_lidar::{direct_estimate_family, region_direct_estimates};
use crate::features::{features_of, features_table, CityFeatures, FeatureOptions};
use crate::io::footprints::{read_attributes, Footprints, KeepColumns};
use crate::io::table::{Column, Table};
use crate::label::{label_footprints, read_city_footprints, LabelTable};
use crate::model::level::{descriptor_source, LevelModel, AREA};
use crate::model::local::LocalOptions;
use crate::model::predict::{interval_structure, region_matrix};
use crate::model::predict::{predict_region_local, LocalData, Predictions};
use crate::model::HeightModel;
use crate::progress::Progress;

use super::Job;

/// Metadata key of a partition's plan-only facts (removed by the merge).
pub const PLAN_METADATA: &str = "roofline_plan";
/// Columns a predictions partition carries for the merge's recalibration (removed by it).
pub const HELPER_COLUMNS: [&str; 5] = [
    "_plan_predicted_lo_m",
    "_plan_predicted_hi_m",
    "_plan_x",
    "_plan_y",
    "_plan_area_m2",
];

/// Prefix of the columns a predictions partition carries for each footprint feature
/// ([`crate::features::CityFeatures::footprint_features`]), which the merge's anchoring learns
/// from (removed by it).
pub const FEATURE_PREFIX: &str = "_plan_feature_";

/// Columns a predictions partition of a model with a city level carries, so the merge can
/// apply the whole region's level (a tile's own, from its buildings alone, differs): each
/// row's structure and interval bounds in ln(height) above the level, its value of the
/// feature the level is estimated from (removed by the merge). The spread cap reads the
/// footprint area from [`HELPER_COLUMNS`].
pub const LEVEL_COLUMNS: [&str; 4] = [
    "_plan_structure",
    "_plan_lo_structure",
    "_plan_hi_structure",
    "_plan_level_feature",
];

/// What the merge does after concatenating a predictions stage's partitions, under
/// [`PLAN_METADATA`].
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct MergeSteps {
    /// Recalibrate on every known building of the region (the model's [`LocalOptions`]), as
    /// `roofline predict` does; `None` leaves the rows as the jobs predicted them.
    #[serde(default)]
    pub recalibrate: Option<LocalOptions>,
    /// The model's city level: the merge estimates the region's from every job's rows
    /// ([`LEVEL_COLUMNS`]) and predicts them at it, as a single run does.
    #[serde(default)]
    pub level: Option<PlanLevel>,
}

/// A model's city level, as the merge needs it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PlanLevel {
    /// The model's level model.
    pub model: LevelModel,
    /// With an interval model, whether its bounds are in ln(height) above the level
    /// (`None`: no intervals).
    pub intervals: Option<bool>,
}

/// A job's city config (its point clouds narrowed to the job's) and the footprints it reads.
pub struct JobInput {
    /// The job.
    pub job: Job,
    /// The city's config with its point clouds narrowed to the job's.
    pub cfg: CityConfig,
    /// The footprints the job reads, in city order (with the unusable ones when it owns them).
    pub footprints: Footprints,
    /// Positions of the owned buildings in `footprints`.
    owned: Vec<usize>,
}

impl JobInput {
    /// Loads a job's config and reads its footprints, refusing a footprint file changed since planning.
    pub fn open(job: Job) -> Result<JobInput> {
        let mut cfg = CityConfig::load(&job.city)?;
        if let (Some(l), Some(files)) = (&mut cfg.lidar, &job.lidar_files) {
            l.files = files.clone();
        }
        let all = read_city_footprints(&cfg)?;
        if all.len() != job.footprints || all.skipped.len() != job.without_geometry {
            return Err(Error::file(
                &job.city,
                format!(
                    "footprints changed since the plan was made ({} usable and {} without geometry now, {} and {} then): make the plan again",
                    all.len(),
                    all.skipped.len(),
                    job.footprints,
                    job.without_geometry
                ),
            ));
        }
        if job.read.iter().any(|&i| i >= all.len()) || !job.read.is_sorted() {
            return Err(Error::invalid(format!(
                "job {} lists buildings its city does not have: make the plan again",
                job.id
            )));
        }
        let footprints = all.subset(&job.read, job.owns_without_geometry);
        let owned = job
            .owned
            .iter()
            .map(|o| {
                job.read.binary_search(o).map_err(|_| {
                    Error::invalid(format!(
                        "job {} owns building {o} without reading it: make the plan again",
                        job.id
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(JobInput {
            job,
            cfg,
            footprints,
            owned,
        })
    }

    /// Keeps the owned rows of a table built on every read building (plus the unusable rows
    /// appended after them).
    fn owned_rows(&self, t: Table) -> Table {
        let n = self.footprints.len();
        let rows: Vec<Option<usize>> = self
            .owned
            .iter()
            .copied()
            .chain(n..n + self.footprints.skipped.len())
            .map(Some)
            .collect();
        t.take_rows(&rows)
    }

    fn labels(&self, progress: &Progress) -> Result<Option<LabelTable>> {
        match self.cfg.label {
            Some(_) => Ok(Some(label_footprints(
                &self.cfg,
                &self.footprints,
                progress,
            )?)),
            None => Ok(None),
        }
    }

    /// The labels partition: the table `roofline labels` writes, owned rows only.
    pub fn labels_partition(&self, progress: &Progress) -> Result<(Table, LabelTable)> {
        let labels = self
            .labels(progress)?
            .ok_or_else(|| Error::file(&self.cfg.path, "has no [label] section"))?;
        let table = crate::label::labels_output(&labels, &self.footprints);
        Ok((self.owned_rows(table), labels))
    }

    fn features(&self, known_heights: bool, progress: &Progress) -> Result<CityFeatures> {
        let labels = self.labels(progress)?;
        features_of(
            &self.cfg,
            self.footprints.clone(),
            labels,
            FeatureOptions {
                known_heights,
                ..Default::default()
            },
            BTreeMap::new(),
            progress,
        )
    }

    /// The features partition: the table `roofline features` writes, owned rows only.
    pub fn features_partition(&self, known_heights: bool, progress: &Progress) -> Result<Table> {
        let f = self.features(known_heights, progress)?;
        Ok(self.owned_rows(features_table(&[f])?))
    }

    /// The predictions partition: `roofline predict`'s table before the local recalibration
    /// (done by the merge, on every job's rows), owned rows only, with [`HELPER_COLUMNS`].
    pub fn predictions_partition(
        &self,
        model: &HeightModel,
        keep: &KeepColumns,
        recalibrate: bool,
        progress: &Progress,
    ) -> Result<(Table, Predictions)> {
        let fcfg = self.cfg.require_footprints()?;
        let (ids, attributes) = read_attributes(fcfg, keep)?;
        let region = self.features(model.meta.uses_known_heights(), progress)?;
        let sparse = if recalibrate {
            region_direct_estimates(&self.cfg, &region, None, progress)?
                .map(|s| (s, direct_estimate_family()))
        } else {
            None
        };
        let local = LocalData {
            sparse,
            recalibrate: false,
            known: None,
        };
        let p = predict_region_local(model, &region, &local).map_err(|e| match e {
            Error::Invalid(msg) => Error::file(&self.cfg.path, msg),
            other => other,
        })?;
        let out_crs = Crs::common_or_wgs84(std::iter::once(&region.source_crs))?;
        let mut table = p.to_table(&region, &out_crs)?;
        table.join_columns(&p.ids, &ids, attributes);
        table.push(Column::f64(HELPER_COLUMNS[0], p.predicted_lo_m.clone()));
        table.push(Column::f64(HELPER_COLUMNS[1], p.predicted_hi_m.clone()));
        table.push(Column::f64(
            HELPER_COLUMNS[2],
            region.centroids.iter().map(|c| c[0]),
        ));
        table.push(Column::f64(
            HELPER_COLUMNS[3],
            region.centroids.iter().map(|c| c[1]),
        ));
        table.push(Column::f64(HELPER_COLUMNS[4], region.column_or_nan(AREA)));
        let (names, features) = region.footprint_features();
        for (name, column) in names.iter().zip(features.columns()) {
            table.push(Column::f64(
                &format!("{FEATURE_PREFIX}{name}"),
                column.iter().copied(),
            ));
        }
        let level = model.meta.level.as_ref().map(|l| PlanLevel {
            model: l.clone(),
            intervals: model.interval.as_ref().map(|i| i.calibration.log_scale),
        });
        if let Some(l) = &level {
            let x = region_matrix(model, &region)?;
            let structure = model.structure(&x)?;
            let bounds = interval_structure(model, &x)?;
            let nan = vec![f64::NAN; region.len()];
            let (lo, hi) = bounds
                .map(|(a, b)| (a.to_vec(), b.to_vec()))
                .unwrap_or((nan.clone(), nan.clone()));
            let feature = l
                .model
                .descriptor
                .as_deref()
                .and_then(|d| region.column(descriptor_source(d)))
                .map_or(nan, |c| c.to_vec());
            for (name, v) in LEVEL_COLUMNS
                .iter()
                .zip([structure.to_vec(), lo, hi, feature])
            {
                table.push(Column::f64(name, v));
            }
        }
        table.append_unusable(
            &region.skipped,
            &[
                ("city", region.city.as_str()),
                ("source", crate::label::Flag::NoGeometry.as_str()),
                ("label", p.label.as_str()),
            ],
        );
        table.metadata.insert(
            PLAN_METADATA.into(),
            serde_json::to_string(&MergeSteps {
                recalibrate: recalibrate.then(|| LocalOptions::for_model(model)),
                level,
            })
            .expect("plain JSON"),
        );
        Ok((self.owned_rows(table), p))
    }
}
