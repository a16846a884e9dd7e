//! `roofline labels` and `roofline inspect`.

use std::path::{Path, PathBuf};

use roofline::config::CityConfig;
use roofline::error::Result;
use roofline::io::output::{check_output_table, output_name, write_table_with, TableOptions};
use roofline::label::{label_city, LabelTable};
use roofline::progress::Progress;
use roofline::stats::percentile::percentile_sorted;

pub fn run(city: &Path, output: &Path, db: &TableOptions, progress: Progress) -> Result<()> {
    check_output_table(output, db)?;
    let cfg = CityConfig::load(city)?;
    let start = std::time::Instant::now();
    let (footprints, labels) = label_city(&cfg, &progress)?;
    let seconds = start.elapsed().as_secs_f64();
    let table = roofline::label::labels_output(&labels, &footprints);
    let flag = roofline::label::Flag::NoGeometry;
    write_table_with(&table, output, db)?;
    print_summary(&labels, seconds);
    if !footprints.skipped.is_empty() {
        println!(
            "  {flag} {}: footprints without a usable polygon, kept in the table",
            footprints.skipped.len()
        );
    }
    println!(
        "wrote {} ({} rows, geometry in {})",
        output_name(output, db),
        table.n_rows(),
        labels.crs.label
    );
    Ok(())
}

/// Counts per flag and height quantiles of the `ok` labels.
pub fn print_summary(labels: &LabelTable, seconds: f64) {
    println!(
        "{}: {} buildings, label '{}' ({})",
        labels.city,
        labels.rows.len(),
        labels.definition.name,
        labels.definition.detail
    );
    if labels.points_read > 0 {
        println!(
            "  points read: {} in {:.1} s ({:.0} points/s)",
            labels.points_read,
            seconds,
            labels.points_read as f64 / seconds.max(1e-9)
        );
    }
    let counts: Vec<String> = labels
        .flag_counts()
        .iter()
        .map(|(f, n)| format!("{f} {n}"))
        .collect();
    println!("  flags: {}", counts.join(", "));
    let mut h = labels.ok_heights();
    h.sort_unstable_by(f64::total_cmp);
    if h.is_empty() {
        println!("  no ok labels");
    } else {
        let q = |p: f64| percentile_sorted(&h, p);
        println!(
            "  height_m of ok labels: min {:.2}  p10 {:.2}  p25 {:.2}  median {:.2}  p75 {:.2}  p90 {:.2}  max {:.2}",
            h[0],
            q(10.0),
            q(25.0),
            q(50.0),
            q(75.0),
            q(90.0),
            h[h.len() - 1]
        );
    }
}

pub fn inspect(configs: &[PathBuf]) -> Result<()> {
    for path in configs {
        let cfg = CityConfig::load(path)?;
        println!("{} ({})", cfg.name, path.display());
        let mut working = cfg.working_crs.clone();
        let mut footprints = None;
        if let Some(f) = &cfg.footprints {
            // Read as the label stage reads them, so a label field that is not there fails here.
            let fp = roofline::io::footprints::read_footprints(
                f,
                working.as_ref(),
                &roofline::label::footprint_request(&cfg),
            )?;
            let from = match &f.sql {
                Some(_) => "its footprints.sql query".to_string(),
                None => format!("layer '{}'", fp.layer),
            };
            println!(
                "  footprints: {} from {} {from} in {} -> working CRS {} ({} repaired, {} without a usable polygon)",
                fp.len(),
                fp.path.display(),
                fp.source_crs.label,
                fp.crs.label,
                fp.repaired,
                fp.skipped.len()
            );
            println!(
                "    extent {} ({:.0} × {:.0} m), median area {:.1} m², median vertex spacing {:.2} m",
                fp.summary.extent_text(),
                fp.summary.width_m(),
                fp.summary.height_m(),
                fp.summary.median_area_m2,
                fp.summary.median_vertex_spacing_m
            );
            working = Some(fp.crs.clone());
            footprints = Some(fp);
        }
        if let Some(l) = &cfg.lidar {
            let working = match &working {
                Some(w) => w.clone(),
                None => {
                    let fallback = l
                        .crs
                        .as_deref()
                        .map(roofline::crs::Crs::from_user)
                        .transpose()?;
                    let first = roofline::io::pointcloud::PointCloudFile::open(
                        &l.files[0],
                        fallback.as_ref(),
                        l.z_unit_m,
                        &roofline::crs::Crs::from_epsg(4326)?,
                    )?;
                    first.crs.working_for((
                        (first.native_bounds[0] + first.native_bounds[3]) / 2.0,
                        (first.native_bounds[1] + first.native_bounds[4]) / 2.0,
                    ))?
                }
            };
            for c in roofline::io::pointcloud::open_point_clouds(l, &working)? {
                println!(
                    "  point cloud: {} LAS {} format {} {} points, CRS {} ({:?}), z unit {} m, extent {} in {}",
                    c.path.display(),
                    c.version,
                    c.point_format,
                    c.points,
                    c.crs.label,
                    c.crs_source,
                    c.z_unit_m,
                    roofline::io::plausible::extent_text(&c.bounds),
                    working.label
                );
            }
        }
        for im in &cfg.imagery {
            let r = roofline::io::raster::open_raster(&im.path, im.crs.as_deref())?;
            let g = r.geo_transform;
            let (x1, y1) = (g[0] + g[1] * r.width as f64, g[3] + g[5] * r.height as f64);
            println!(
                "  raster: {} {}x{} px, {} bands ({}), CRS {}, extent {}",
                im.path.display(),
                r.width,
                r.height,
                r.bands.len(),
                r.bands
                    .iter()
                    .map(|b| b.data_type.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
                r.crs
                    .as_ref()
                    .map_or("none".to_string(), |c| c.label.clone()),
                roofline::io::plausible::extent_text(&[
                    g[0].min(x1),
                    g[3].min(y1),
                    g[0].max(x1),
                    g[3].max(y1)
                ])
            );
        }
        if let Some(label) = &cfg.label {
            let d = label.definition();
            // Attribute and OpenStreetMap labels are cheap: read them, with the unit check
            // `labels` and `train` make; LiDAR labels are the `labels` command's work.
            let read = match (label, &footprints) {
                (roofline::config::LabelConfig::Lidar(_), _) | (_, None) => String::new(),
                (_, Some(fp)) => {
                    let t = roofline::label::label_footprints(&cfg, fp, &Progress::hidden())?;
                    let mut h = t.ok_heights();
                    h.sort_by(f64::total_cmp);
                    match h.len() {
                        0 => format!(": no footprint carries a usable height (of {})", fp.len()),
                        n => format!(
                            ": {n} of {} footprints carry a height, median {:.1} m",
                            fp.len(),
                            percentile_sorted(&h, 50.0)
                        ),
                    }
                }
            };
            println!("  label: {} ({}){read}", d.name, d.detail);
        }
    }
    Ok(())
}
