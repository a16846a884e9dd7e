//! `roofline demo`: the whole pipeline on the shipped cities — LiDAR labels for Amsterdam and
//! Delft, leave-one-city-out cross-validation of the roof-p70 and eave families, a model
//! trained on all roof-p70 cities, and predictions for a region that is only partly measured.

use std::path::{Path, PathBuf};
use std::time::Instant;

use roofline::config::CityConfig;
use roofline::error::Result;
use roofline::eval::cv::{cross_validate, cross_validate_with, CvOutput, Scenarios, Scheme};
use roofline::eval::scenario::Scenario;
use roofline::features::{city_features, CityFeatures, FeatureOptions};
use roofline::io::output::write_table;
use roofline::label::sparsify::Sparsify;
use roofline::model::anchor::{Draw, Reveal};
use roofline::model::predict::{predict_region_local, LocalData, Source};
use roofline::model::train::{train_model, TrainOptions};
use roofline::model::HeightModel;
use roofline::progress::Progress;
use roofline::render::report::write_report;

const ROOF_P70: [&str; 4] = [
    "amsterdam-centre",
    "delft-3dfier",
    "wageningen",
    "delft-5910",
];
const EAVE: [&str; 2] = ["perigueux", "olemps"];
/// The roof-top cities (footprints and heights only) and each one's within-city block-CV MAE
/// (m; `roofline cv CITY --by blocks`, seed 42): what a model with local labels reaches, the
/// yardstick of leave-one-city-out.
const ROOF_TOP: [(&str, f64); 6] = [
    ("linz", 3.15),
    ("tokyo-chiyoda", 6.98),
    ("tokyo-setagaya", 1.60),
    ("la-venice", 1.48),
    ("rotterdam-delfshaven", 3.25),
    ("lorup", 1.60),
];
/// Leave-one-city-out MAE (m) of the reference pipeline users write today (geopandas + shapely
/// features, LightGBM 500 trees), as measured for issue #6 on the same data.
const REFERENCE_LOCO: [(&str, f64); 6] = [
    ("amsterdam-centre", 6.14),
    ("delft-3dfier", 1.69),
    ("wageningen", 4.00),
    ("delft-5910", 1.87),
    ("perigueux", 3.02),
    ("olemps", 1.67),
];

pub fn run(data: &Path, out: &Path, models: &Path, progress: Progress) -> Result<()> {
    let start = Instant::now();
    for dir in [out, models] {
        std::fs::create_dir_all(dir)
            .map_err(|e| roofline::Error::file(dir, format!("cannot create folder: {e}")))?;
    }
    let demo = Demo {
        data,
        out,
        progress: &progress,
    };
    println!(
        "roofline demo: data from {}, outputs in {}\n",
        data.display(),
        out.display()
    );

    println!("1. Height labels from LiDAR");
    let roof: Vec<CityFeatures> = ROOF_P70
        .iter()
        .map(|n| demo.load(n))
        .collect::<Result<_>>()?;
    demo.write_labels(&roof)?;

    println!("\n2. Leave-one-city-out cross-validation, with and without local data");
    let opts = TrainOptions::default();
    let cv_roof = demo.cross_validate(&roof, &opts)?;

    println!("\n3. Model trained on all roof-p70 cities");
    let model = train(&roof, &cv_roof, &opts, models)?;

    println!("\n4. Predictions for a partly measured region (Bresse: 40 buildings, a LiDAR tile over some)");
    let map_path = demo.predict(&model)?;

    println!(
        "\n5. Six cities on three continents with footprints and heights only (roof-top family)"
    );
    demo.roof_top(&opts)?;
    println!("\nOpen in a browser (self-contained, work offline):");
    for family in ["cv-roof-p70", "cv-eave", "cv-roof-top"] {
        println!("  {}", out.join(family).join("report.html").display());
    }
    println!("  {}", map_path.display());
    println!("\ndone in {:.0} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// Where the demo reads and writes, shared by its steps.
struct Demo<'a> {
    data: &'a Path,
    out: &'a Path,
    progress: &'a Progress,
}

impl Demo<'_> {
    /// A shipped city's config, by name.
    fn config(&self, name: &str) -> Result<CityConfig> {
        CityConfig::load(self.data.join("cities").join(format!("{name}.toml")))
    }

    /// A shipped city's labels and features; no known-neighbour heights, as
    /// leave-one-city-out cannot use them.
    fn load(&self, name: &str) -> Result<CityFeatures> {
        city_features(
            &self.config(name)?,
            FeatureOptions {
                known_heights: false,
                ..Default::default()
            },
            self.progress,
        )
    }

    /// Step 1: the labels of the two fully surveyed cities, written and summarised.
    fn write_labels(&self, roof: &[CityFeatures]) -> Result<()> {
        let out = self.out;
        std::fs::create_dir_all(out.join("labels")).map_err(|e| roofline::Error::file(out, e))?;
        for c in roof
            .iter()
            .filter(|c| c.city == "amsterdam-centre" || c.city == "delft-3dfier")
        {
            let labels = c.labels.as_ref().expect("shipped cities have labels");
            let path = out.join("labels").join(format!("{}.gpkg", c.city));
            let mut t = labels.to_table(None);
            t.geometry = Some(c.geometries.clone());
            write_table(&t, &path)?;
            super::labels::print_summary(
                labels,
                c.timings.get("read_and_label").copied().unwrap_or(0.0),
            );
            println!("  -> {}", path.display());
        }
        Ok(())
    }

    /// Step 2: both label families cross-validated (roof-p70 with local-data scenarios) and
    /// set against the reference pipeline; returns the roof-p70 run, whose errors go into
    /// the model.
    fn cross_validate(&self, roof: &[CityFeatures], opts: &TrainOptions) -> Result<CvOutput> {
        let out = self.out;
        let roof_configs = ROOF_P70
            .iter()
            .map(|n| self.config(n))
            .collect::<Result<Vec<_>>>()?;
        // What a city without a full survey might have: a 0.05 pts/m² survey, or 5 % of its
        // buildings measured.
        let scenarios = [
            Scenario::SparseLidar {
                sparsify: Sparsify::Density {
                    points_per_m2: 0.05,
                },
            },
            Scenario::LocalLabels {
                known: Reveal::Share(0.05),
                draw: Draw::Spread,
            },
        ];
        let cv_roof = cross_validate_with(
            roof,
            Scheme::City,
            opts,
            Scenarios {
                list: &scenarios,
                configs: &roof_configs,
            },
            self.progress,
        )?;
        write_report(&cv_roof, roof, &out.join("cv-roof-p70"))?;
        super::models::print_cv_summary(&cv_roof.summary);
        let eave: Vec<CityFeatures> = EAVE.iter().map(|n| self.load(n)).collect::<Result<_>>()?;
        let cv_eave = cross_validate(&eave, Scheme::City, opts, self.progress)?;
        write_report(&cv_eave, &eave, &out.join("cv-eave"))?;
        super::models::print_cv_summary(&cv_eave.summary);
        print_against_reference(&cv_roof, &cv_eave);
        println!(
            "  -> {} and {} (and report.html next to each)",
            out.join("cv-roof-p70/report.md").display(),
            out.join("cv-eave/report.md").display()
        );
        Ok(cv_roof)
    }

    /// Step 5: leave-one-city-out over the roof-top cities, each set against the training
    /// median (the constant a model must beat) and its own block CV.
    fn roof_top(&self, opts: &TrainOptions) -> Result<()> {
        let cities: Vec<CityFeatures> = ROOF_TOP
            .iter()
            .map(|(n, _)| self.load(n))
            .collect::<Result<_>>()?;
        let cv = cross_validate(&cities, Scheme::City, opts, self.progress)?;
        let dir = self.out.join("cv-roof-top");
        write_report(&cv, &cities, &dir)?;
        println!("\n  city                  LOCO MAE   training median   block CV   ratio   90 % coverage, median width");
        let mut ratios = Vec::new();
        for (city, block_cv) in ROOF_TOP {
            let Some(c) = cv.summary.per_city.iter().find(|c| c.city == city) else {
                continue;
            };
            let ratio = c.model.mae / block_cv;
            ratios.push(ratio);
            println!(
                "  {city:<20} {:>7.2} m   {:>13.2} m   {block_cv:>6.2} m   {ratio:>5.2}   {:>5.1} %, {:.1} m",
                c.model.mae,
                c.baseline.mae,
                100.0 * c.model.coverage.unwrap_or(f64::NAN),
                c.model.median_interval_width.unwrap_or(f64::NAN),
            );
        }
        println!(
            "  mean LOCO ÷ block CV: {:.2} (the training median everywhere: 1.93)",
            ratios.iter().sum::<f64>() / ratios.len().max(1) as f64
        );
        println!("  -> {} (and report.html next to it); the model trained on all six ships as models/roof-top.model", dir.join("report.md").display());
        Ok(())
    }

    /// Step 4: the partly measured region predicted (measured buildings kept, the model
    /// recalibrated on them), written with its 3D map; returns the map's path.
    fn predict(&self, model: &HeightModel) -> Result<PathBuf> {
        let out = self.out;
        let cfg = CityConfig::load(self.data.join("lidar-samples/bresse.toml"))?;
        let region = city_features(
            &cfg,
            FeatureOptions {
                known_heights: false,
                ..Default::default()
            },
            self.progress,
        )?;
        let local = LocalData {
            recalibrate: true,
            ..Default::default()
        };
        let p = predict_region_local(model, &region, &local)?;
        std::fs::create_dir_all(out.join("predictions"))
            .map_err(|e| roofline::Error::file(out, e))?;
        let pred_path = out.join("predictions").join("bresse.gpkg");
        let pred_table = p.to_table(&region, &region.source_crs)?;
        write_table(&pred_table, &pred_path)?;
        let map_path = out.join("predictions").join("bresse.html");
        let layer = roofline::render::map::MapLayer::from_predictions(&pred_table)?;
        roofline::io::output::write_text(&map_path, &layer.page("roofline heights: Bresse"))?;
        let measured = p.source.iter().filter(|s| **s == Source::Measured).count();
        println!(
            "  {} measured from LiDAR, {} predicted with 90 % intervals (recalibrated on the measured ones), {} flagged out of the training range",
            measured,
            p.ids.len() - measured,
            p.ood_features.iter().filter(|n| **n > 0).count()
        );
        println!(
            "  -> {} (geometry in {})",
            pred_path.display(),
            region.source_crs.label
        );
        println!("  -> {} (3D map)", map_path.display());
        Ok(map_path)
    }
}

/// Each city's leave-one-city-out MAE next to the reference pipeline's: the comparison the
/// demo exists to show.
fn print_against_reference(cv_roof: &CvOutput, cv_eave: &CvOutput) {
    println!("\n  city               roofline MAE   reference MAE (geopandas + LightGBM)");
    for (city, reference) in REFERENCE_LOCO {
        let ours = cv_roof
            .summary
            .per_city
            .iter()
            .chain(&cv_eave.summary.per_city)
            .find(|c| c.city == city)
            .map_or(f64::NAN, |c| c.model.mae);
        println!("  {city:<18} {ours:>8.2} m    {reference:>8.2} m");
    }
}

/// Step 3: one model on every roof-p70 city, its cross-validated errors stored with it.
fn train(
    roof: &[CityFeatures],
    cv_roof: &CvOutput,
    opts: &TrainOptions,
    models: &Path,
) -> Result<HeightModel> {
    let refs: Vec<&CityFeatures> = roof.iter().collect();
    let mut model = train_model(&refs, opts)?;
    model.meta.cv = Some(
        serde_json::to_value(&cv_roof.summary.per_city)
            .map_err(|e| roofline::Error::invalid(e.to_string()))?,
    );
    let model_path = models.join("roof-p70.model");
    model.save(&model_path)?;
    let calibration = model.meta.calibration.as_ref();
    println!(
        "  {} buildings, {} features; interval calibration {} over {}",
        model.meta.training.iter().map(|t| t.used).sum::<usize>(),
        model.meta.feature_names.len(),
        calibration.map_or(String::new(), |c| c.correction_text()),
        calibration.map_or(String::new(), |c| c.groups.join(", "))
    );
    println!("  -> {}", model_path.display());
    Ok(model)
}
