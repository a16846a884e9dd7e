//! `report.html`: the cross-validation report a planner opens in a browser — the tables of
//! `report.md`, SVG plots ([`super::plots`]) and the 3D error map ([`super::map`]) — in one
//! self-contained file (no network: every script and style inlined). It is rendered from the
//! summary written to `metrics.json` and the predictions table written to
//! `predictions.parquet`, by `roofline cv` and again by `roofline report`, so its numbers are
//! those files' numbers.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use geo::Centroid;

use super::format::{f, opt, pct, spread, worse_than};
use super::map::{escape, head_assets, MapLayer};
use super::plots::{self, PlotRow};
use crate::error::{Error, Result};
use crate::eval::cv::{CityMetrics, CvSummary};
use crate::io::output::{read_table, write_text};
use crate::io::table::Table;

/// The held-out rows of the model alone (scenario `none`), per city, in summary order.
fn plot_rows(summary: &CvSummary, t: &Table) -> Result<Vec<(String, Vec<PlotRow>)>> {
    let need = |name: &str| {
        t.column(name)
            .ok_or_else(|| Error::invalid(format!("the predictions table has no '{name}' column")))
    };
    let city = need("city")?.as_strings();
    let truth = need("height_m")?.as_f64();
    let predicted = need("height_predicted_m")?.as_f64();
    let lo = need("height_lo_m")?.as_f64();
    let hi = need("height_hi_m")?.as_f64();
    let ood = need("ood")?.as_f64();
    let scenario = t
        .column("scenario")
        .map(|c| c.as_strings())
        .unwrap_or_else(|| vec![String::new(); t.n_rows()]);
    let geographic = t.crs.as_ref().is_some_and(|c| c.is_geographic());
    let centres: Vec<Option<(f64, f64)>> = match &t.geometry {
        Some(g) => g
            .iter()
            .map(|p| {
                p.centroid().map(|c| {
                    if geographic {
                        // Degrees to metres around the building (enough for a map panel).
                        let k = c.y().to_radians().cos();
                        (c.x() * 111_320.0 * k, c.y() * 110_540.0)
                    } else {
                        (c.x(), c.y())
                    }
                })
            })
            .collect(),
        None => vec![None; t.n_rows()],
    };
    Ok(summary
        .per_city
        .iter()
        .map(|c| {
            let rows = (0..t.n_rows())
                .filter(|&i| city[i] == c.city)
                .filter(|&i| {
                    scenario[i].is_empty() || scenario[i] == crate::eval::rows::NO_SCENARIO
                })
                .map(|i| PlotRow {
                    truth: truth[i],
                    predicted: predicted[i],
                    lo: lo[i],
                    hi: hi[i],
                    ood: ood[i] == 1.0,
                    centre: centres[i],
                })
                .collect();
            (c.city.clone(), rows)
        })
        .collect())
}

fn signed(v: f64) -> String {
    if v.is_finite() {
        format!("{v:+.2}")
    } else {
        "–".into()
    }
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;\
max-width:1200px;padding:0 20px 40px;color:#222;line-height:1.4}\
h1{font-size:1.6em;margin-top:24px}h2{font-size:1.25em;margin-top:32px;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;font-size:13px;margin:8px 0}\
th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}\
th:first-child,td:first-child{text-align:left}th{background:#f6f6f6}\
tr.pooled td{font-weight:600;border-top:2px solid #ccc}\
.plots{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0}figure svg{max-width:100%;height:auto}\
.note{background:#fff8e5;border-left:4px solid #e6a700;padding:6px 10px;font-size:13px}\
.muted{color:#666;font-size:13px}.bar{background:#4c78a8;height:10px;display:inline-block}\
.map-wrap{border:1px solid #ccc}";

/// The whole page.
pub fn render_html(summary: &CvSummary, predictions: &Table) -> Result<String> {
    let s = summary;
    let rows = plot_rows(s, predictions)?;
    let mut h = String::new();
    header(&mut h, s);
    per_city(&mut h, s);
    scatters(&mut h, &rows)?;
    by_height_bin(&mut h, s, &rows)?;
    intervals_and_ood(&mut h, s)?;
    maps(&mut h, &rows, predictions)?;
    importances(&mut h, s);
    scenarios(&mut h, s);
    ablation(&mut h, s);
    let _ = writeln!(
        h,
        "<p class=\"muted\">Rendered from metrics.json and predictions.parquet of this folder (<code>roofline report</code> renders it again).</p>\n</body></html>"
    );
    Ok(h)
}

/// The page head and what was run: scheme, label, cities, model.
fn header(h: &mut String, s: &CvSummary) {
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>roofline cross-validation: {}</title>\n<style>{STYLE}</style>\n{}</head><body>\n",
        escape(&s.cities.join(", ")),
        head_assets()
    );
    let _ = writeln!(h, "<h1>roofline cross-validation</h1><ul>");
    let _ = writeln!(h, "<li>scheme: {}</li>", escape(&s.scheme.to_string()));
    let _ = writeln!(
        h,
        "<li>label: <code>{}</code> — {}</li>",
        escape(&s.label.name),
        escape(&s.label.detail)
    );
    let _ = writeln!(h, "<li>cities: {}</li>", escape(&s.cities.join(", ")));
    let _ = writeln!(
        h,
        "<li>model: {} (seed {}), known-neighbour heights: {}; roofline {}</li>",
        escape(&format!("{:?}", s.model).to_lowercase()),
        s.seed,
        if s.known_heights { "yes" } else { "no" },
        escape(&s.roofline_version)
    );
    let _ = writeln!(
        h,
        "<li>heights in metres; error = predicted − measured; baseline = median label of the fold's training buildings</li></ul>"
    );
    if s.mixed_labels {
        let _ = writeln!(h, "<p class=\"note\"><b>Mixed label definitions</b> — these cities define height differently; errors include that difference.</p>");
    }
}

/// The headline errors, one row per city and the pooled row.
fn per_city(h: &mut String, s: &CvSummary) {
    let _ = writeln!(h, "<h2>Errors per held-out city</h2>");
    let _ = writeln!(h, "<table id=\"per-city\"><tr><th>city</th><th>n</th><th>MAE</th><th>RMSE</th><th>R²</th><th>median |error|</th><th>bias</th><th>within ±2.5 m</th><th>90 % coverage</th><th>median interval width</th><th>baseline MAE</th><th>out of training range</th></tr>");
    for c in s.per_city.iter().chain(std::iter::once(&s.pooled)) {
        let m = &c.model;
        let pooled = std::ptr::eq(c, &s.pooled);
        let _ = writeln!(
            h,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if pooled { " class=\"pooled\"" } else { "" },
            if pooled { "pooled".to_string() } else { escape(&c.city) },
            m.n,
            f(m.mae),
            f(m.rmse),
            f(m.r2),
            f(m.median_ae),
            signed(m.bias),
            pct(Some(m.within_2_5m)),
            pct(m.coverage),
            opt(m.median_interval_width),
            f(c.baseline.mae),
            pct(m.out_of_range_share),
        );
    }
    let _ = writeln!(h, "</table>");
    let negative: Vec<&str> = s
        .per_city
        .iter()
        .filter(|c| c.model.r2 < 0.0)
        .map(|c| c.city.as_str())
        .collect();
    if !negative.is_empty() {
        let note = crate::eval::metrics::negative_r2_note(&negative).replace('*', "");
        let _ = writeln!(h, "<p class=\"note\">{}</p>", escape(&note));
    }
}

/// Predicted against measured, one plot per held-out city.
fn scatters(h: &mut String, rows: &[(String, Vec<PlotRow>)]) -> Result<()> {
    let _ = writeln!(h, "<h2>Predicted vs measured, per held-out city</h2>");
    let _ = writeln!(h, "<p class=\"muted\">Each city predicted by a model that never saw it. Up to {} buildings per city are drawn (an even sample of the rows); orange bars are the 90 % intervals of {} of them.</p><div class=\"plots\">", plots::MAX_POINTS, plots::INTERVAL_BARS);
    for (city, r) in rows {
        let _ = writeln!(
            h,
            "<figure class=\"scatter\" data-city=\"{}\">{}</figure>",
            escape(city),
            plots::scatter(city, r)?
        );
    }
    let _ = writeln!(h, "</div>");
    Ok(())
}

/// Errors by measured-height bin: where a model fails (tall buildings) hides in averages.
fn by_height_bin(h: &mut String, s: &CvSummary, rows: &[(String, Vec<PlotRow>)]) -> Result<()> {
    let _ = writeln!(h, "<h2>Errors by measured-height bin</h2>");
    let with_rows: Vec<(&CityMetrics, Vec<PlotRow>)> = s
        .per_city
        .iter()
        .zip(rows)
        .map(|(c, (_, r))| (c, r.clone()))
        .collect();
    let _ = writeln!(
        h,
        "<figure class=\"residuals\">{}</figure>",
        plots::residual_by_bin(&with_rows)?
    );
    let _ = writeln!(h, "<table id=\"bins\"><tr><th>city</th><th>bin (m)</th><th>n</th><th>MAE</th><th>bias</th><th>baseline MAE</th><th>baseline bias</th></tr>");
    for c in s.per_city.iter().chain(std::iter::once(&s.pooled)) {
        for (x, y) in c.model.bins.iter().zip(&c.baseline.bins) {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&c.city),
                escape(&x.bin),
                x.n,
                opt(x.mae),
                x.bias.map_or("–".into(), signed),
                opt(y.mae),
                y.bias.map_or("–".into(), signed)
            );
        }
    }
    let _ = writeln!(h, "</table>");
    Ok(())
}

/// Interval coverage and errors of buildings flagged out of the training range, so the flag
/// is shown to mean something.
fn intervals_and_ood(h: &mut String, s: &CvSummary) -> Result<()> {
    let cities: Vec<&CityMetrics> = s.per_city.iter().collect();
    let _ = writeln!(h, "<h2>Intervals and the out-of-training-range flag</h2>");
    let finding = s.ood_finding().replace('*', "");
    let _ = writeln!(
        h,
        "<p class=\"muted\">{}</p><div class=\"plots\">",
        escape(&finding).replace("`ood`", "<i>ood</i>")
    );
    let _ = writeln!(
        h,
        "<figure class=\"coverage\">{}</figure>",
        plots::coverage(&cities)?
    );
    let _ = writeln!(
        h,
        "<figure class=\"ood\">{}</figure></div>",
        plots::error_by_ood(&cities)?
    );
    let _ = writeln!(h, "<table id=\"ood\"><tr><th>city</th><th>ood n</th><th>ood MAE</th><th>ood 90 % coverage</th><th>in-range n</th><th>in-range MAE</th><th>in-range 90 % coverage</th></tr>");
    for c in s.per_city.iter().chain(std::iter::once(&s.pooled)) {
        let part = |m: &Option<crate::eval::metrics::Metrics>| match m {
            Some(m) => (m.n.to_string(), f(m.mae), pct(m.coverage)),
            None => ("0".into(), "–".into(), "–".into()),
        };
        let (a, b, c2) = part(&c.ood);
        let (d, e, g) = part(&c.in_range);
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{a}</td><td>{b}</td><td>{c2}</td><td>{d}</td><td>{e}</td><td>{g}</td></tr>",
            escape(&c.city)
        );
    }
    let _ = writeln!(h, "</table>");
    Ok(())
}

/// Where the errors are: a 2D map per city and the 3D map (or why there is none).
fn maps(h: &mut String, rows: &[(String, Vec<PlotRow>)], predictions: &Table) -> Result<()> {
    let _ = writeln!(h, "<h2>Where the errors are</h2><div class=\"plots\">");
    for (city, r) in rows {
        if let Some(svg) = plots::error_map(city, r)? {
            let _ = writeln!(
                h,
                "<figure class=\"error-map\" data-city=\"{}\">{svg}</figure>",
                escape(city)
            );
        }
    }
    let _ = writeln!(h, "</div>");
    match MapLayer::from_cv(predictions) {
        Ok(layer) => {
            let _ = writeln!(
                h,
                "<p class=\"muted\">3D map: every held-out building extruded to its measured height, coloured by predicted − measured. Drag to pan, right-drag or Ctrl-drag to tilt and turn; hover or click a building for its values; the buttons jump to each city.</p>\n<div class=\"map-wrap\">{}</div>",
                layer.embed("error-map-3d", "560px")
            );
        }
        Err(e) => {
            let _ = writeln!(
                h,
                "<p class=\"note\">No 3D map: {}</p>",
                escape(&e.to_string())
            );
        }
    }
    Ok(())
}

/// The features the point model leaned on, when the summary has them.
fn importances(h: &mut String, s: &CvSummary) {
    if !s.importance.is_empty() {
        let _ = writeln!(h, "<h2>Feature importances</h2><p class=\"muted\">Share of the point model's split gain, averaged over the folds.</p>");
        let _ = writeln!(
            h,
            "<table id=\"importance\"><tr><th>feature</th><th>gain share</th><th></th></tr>"
        );
        let top = s.importance.first().map_or(1.0, |x| x.1.max(1e-12));
        for (name, share) in &s.importance {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{:.1} %</td><td style=\"text-align:left\"><span class=\"bar\" style=\"width:{:.0}px\"></span></td></tr>",
                escape(name),
                100.0 * share,
                300.0 * share / top
            );
        }
        let _ = writeln!(h, "</table>");
    }
}

/// One row per ablation variant (as in report.md).
fn ablation(h: &mut String, s: &CvSummary) {
    let Some(first) = s.ablation.first() else {
        return;
    };
    let seeds: Vec<String> = first.seeds.iter().map(|x| x.to_string()).collect();
    let _ = writeln!(h, "<h2>Ablation (leave-one-city-out, no local data)</h2>");
    let _ = writeln!(
        h,
        "<p>Each variant retrains every fold with one change. MAE in m, mean (min–max) over seeds {}; ▲ marks a city more than 5 % worse than the default.</p>",
        seeds.join(", ")
    );
    let _ = write!(h, "<table id=\"ablation\"><tr><th>variant</th>");
    for c in &first.per_city {
        let _ = write!(h, "<th>{}</th>", escape(&c.city));
    }
    let _ = writeln!(h, "<th>mean of cities</th><th>what it changes</th></tr>");
    for row in &s.ablation {
        let _ = write!(h, "<tr><td>{}</td>", escape(&row.variant));
        for c in &row.per_city {
            let base = first.per_city.iter().find(|b| b.city == c.city);
            let worse = row.variant != first.variant && worse_than(c, base);
            let _ = write!(
                h,
                "<td>{}{}</td>",
                spread(&c.mae),
                if worse { " ▲" } else { "" }
            );
        }
        let _ = writeln!(
            h,
            "<td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            spread(&row.mean_mae),
            escape(&row.meaning)
        );
    }
    let _ = writeln!(h, "</table>");
}

/// One row per scenario and held-out city, next to the same city with no local data.
fn scenarios(h: &mut String, s: &CvSummary) {
    if s.scenarios.is_empty() {
        return;
    }
    let _ = writeln!(h, "<h2>Local-data scenarios (leave-one-city-out)</h2>");
    let _ = writeln!(h, "<table id=\"scenarios\"><tr><th>scenario</th><th>city</th><th>n scored</th><th>MAE</th><th>MAE, no local data</th><th>bias</th><th>90 % coverage</th><th>median width</th><th>known buildings</th><th>measured directly</th></tr>");
    for sc in &s.scenarios {
        for c in &sc.cities {
            let base = s
                .per_city
                .iter()
                .find(|m| m.city == c.city)
                .map_or("–".into(), |m| f(m.model.mae));
            if let Some(why) = &c.skipped {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td colspan=\"8\" style=\"text-align:left\">skipped: {} (no local data MAE {base})</td></tr>",
                    escape(&sc.name),
                    escape(&c.city),
                    escape(why)
                );
                continue;
            }
            let Some(m) = sc.per_city.iter().find(|m| m.city == c.city) else {
                continue;
            };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{base}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&sc.name),
                escape(&c.city),
                m.model.n,
                f(m.model.mae),
                signed(m.model.bias),
                pct(m.model.coverage),
                opt(m.model.median_interval_width),
                c.known,
                c.direct
            );
        }
    }
    let _ = writeln!(h, "</table>");
}

/// Renders `report.html` again from a cross-validation folder's `metrics.json` and
/// `predictions.parquet` (or `predictions.csv`, which has no footprints: no maps then).
pub fn rerender(dir: &Path) -> Result<PathBuf> {
    let metrics = dir.join("metrics.json");
    let text = std::fs::read_to_string(&metrics)
        .map_err(|e| Error::file(&metrics, format!("cannot read: {e}")))?;
    let mut de = serde_json::Deserializer::from_str(&text);
    let summary: CvSummary = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| Error::file(&metrics, format!("not a roofline metrics.json: {e}")))?;
    let parquet = dir.join("predictions.parquet");
    let csv = dir.join("predictions.csv");
    let table = if parquet.exists() {
        read_table(&parquet)?
    } else if csv.exists() {
        let mut t = read_table(&csv)?;
        t.columns.retain(|c| c.name != "geometry");
        t
    } else {
        return Err(Error::file(
            dir,
            "has no predictions.parquet or predictions.csv (is it a roofline cv folder?)",
        ));
    };
    let out = dir.join("report.html");
    write_text(&out, &render_html(&summary, &table)?)?;
    Ok(out)
}
