//! `report.md`: the tables of a cross-validation in Markdown, rendered from the same summary as
//! `metrics.json` so the two never disagree.

use std::fmt::Write as _;

use super::format::{f, opt, pct, spread, worse_than};
use crate::eval::cv::{CityMetrics, CvOutput};
use crate::eval::metrics::Metrics;

/// The Markdown report.
pub fn render_markdown(out: &CvOutput) -> String {
    let s = &out.summary;
    let mut md = String::new();
    let warn = if s.mixed_labels {
        "\n> **Mixed label definitions** — these cities define height differently; errors include that difference.\n"
    } else {
        ""
    };
    let _ = writeln!(md, "# roofline cross-validation\n");
    let _ = writeln!(md, "- scheme: {:#}", s.scheme);
    let _ = writeln!(md, "- label: `{}` — {}", s.label.name, s.label.detail);
    let _ = writeln!(md, "- cities: {}", s.cities.join(", "));
    let _ = writeln!(
        md,
        "- model: {} (seed {}), known-neighbour heights: {}",
        s.model,
        s.seed,
        if s.known_heights { "yes" } else { "no" }
    );
    let _ = writeln!(
        md,
        "- heights in metres; baseline = median label of the fold's training buildings"
    );
    let _ = writeln!(md, "{warn}");
    let _ = writeln!(md, "## Errors per held-out city\n{warn}");
    let _ = writeln!(md, "| city | n | MAE | baseline MAE | RMSE | R² | median AE | bias | within ±2.5 m | MAE without sheds (<10 m²) | 90 % coverage | median width | out of training range | coverage in range |");
    let _ = writeln!(
        md,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for c in s.per_city.iter().chain(std::iter::once(&s.pooled)) {
        let m = &c.model;
        let name = if c.city == "all" {
            "**pooled**".to_string()
        } else {
            c.city.clone()
        };
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} | {} | {:+.2} | {} | {} | {} | {} | {} | {} |",
            m.n,
            f(m.mae),
            f(c.baseline.mae),
            f(m.rmse),
            f(m.r2),
            f(m.median_ae),
            m.bias,
            pct(Some(m.within_2_5m)),
            opt(m.mae_without_sheds),
            pct(m.coverage),
            opt(m.median_interval_width),
            pct(m.out_of_range_share),
            pct(m.coverage_in_range)
        );
    }
    let negative: Vec<&str> = s
        .per_city
        .iter()
        .filter(|c| c.model.r2 < 0.0)
        .map(|c| c.city.as_str())
        .collect();
    if !negative.is_empty() {
        let _ = writeln!(
            md,
            "\n{}",
            crate::eval::metrics::negative_r2_note(&negative)
        );
    }
    let _ = writeln!(md, "\n{}\n", s.ood_finding());
    ood_section(&mut md, s);
    scenario_section(&mut md, s);
    ablation_section(&mut md, s);
    let _ = writeln!(md, "\n## Errors per height bin (by true height)\n{warn}");
    let _ = writeln!(md, "Cities whose height distribution differs from the training cities show up here as a bias that grows with height.\n");
    let _ = writeln!(
        md,
        "| city | bin (m) | n | MAE | bias | baseline MAE | baseline bias |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|");
    for c in s.per_city.iter().chain(std::iter::once(&s.pooled)) {
        bin_rows(&mut md, c);
    }
    md
}

fn bin_rows(md: &mut String, c: &CityMetrics) {
    let (m, b): (&Metrics, &Metrics) = (&c.model, &c.baseline);
    for (x, y) in m.bins.iter().zip(&b.bins) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            c.city,
            x.bin,
            x.n,
            opt(x.mae),
            x.bias.map_or("–".into(), |v| format!("{v:+.2}")),
            opt(y.mae),
            y.bias.map_or("–".into(), |v| format!("{v:+.2}"))
        );
    }
}

/// Errors and coverage of buildings flagged `ood` and of the rest: what the flag is worth.
fn ood_section(md: &mut String, s: &crate::eval::cv::CvSummary) {
    let _ = writeln!(md, "\n## Out of training range (`ood`) vs in range\n");
    let _ = writeln!(
        md,
        "| city | ood n | ood MAE | ood 90 % coverage | in-range n | in-range MAE | in-range 90 % coverage |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
    for c in s.per_city.iter().chain(std::iter::once(&s.pooled)) {
        let part = |m: &Option<Metrics>| match m {
            Some(m) => (m.n.to_string(), f(m.mae), pct(m.coverage)),
            None => ("0".into(), "–".into(), "–".into()),
        };
        let (a, b, c2) = part(&c.ood);
        let (d, e, g) = part(&c.in_range);
        let _ = writeln!(md, "| {} | {a} | {b} | {c2} | {d} | {e} | {g} |", c.city);
    }
}

/// One row per ablation variant: each held-out city's MAE, mean (min–max) over seeds.
fn ablation_section(md: &mut String, s: &crate::eval::cv::CvSummary) {
    let Some(first) = s.ablation.first() else {
        return;
    };
    let seeds: Vec<String> = first.seeds.iter().map(|x| x.to_string()).collect();
    let _ = writeln!(md, "\n## Ablation (leave-one-city-out, no local data)\n");
    let _ = writeln!(
        md,
        "Each variant retrains every fold with one change; MAE in m, mean (min–max) over seeds {}. Point model only. A change is worth keeping when it lowers the mean and raises no city's MAE by more than 5 %.\n",
        seeds.join(", ")
    );
    let cities: Vec<&str> = first.per_city.iter().map(|c| c.city.as_str()).collect();
    let _ = writeln!(
        md,
        "| variant | {} | mean of cities | what it changes |",
        cities.join(" | ")
    );
    let _ = writeln!(md, "|---|{}---:|---|", "---:|".repeat(cities.len()));
    for row in &s.ablation {
        let cells: Vec<String> = row
            .per_city
            .iter()
            .map(|c| {
                let base = first.per_city.iter().find(|b| b.city == c.city);
                let worse = row.variant != first.variant && worse_than(c, base);
                format!("{}{}", spread(&c.mae), if worse { " ▲" } else { "" })
            })
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            row.variant,
            cells.join(" | "),
            spread(&row.mean_mae),
            row.meaning
        );
    }
    let _ = writeln!(
        md,
        "\n▲: more than 5 % worse than the default in that city."
    );
}

/// One row per scenario and held-out city, next to the same city with no local data.
fn scenario_section(md: &mut String, s: &crate::eval::cv::CvSummary) {
    if s.scenarios.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Local-data scenarios (leave-one-city-out)\n");
    let _ = writeln!(
        md,
        "The held-out city is given local data; its full labels are kept only as the truth. \
         `sparse-lidar`: its own survey degraded (buildings still hit by ≥ 3 roof points are \
         measured directly and scored too; the rest are predicted, recalibrated on them). \
         `local-labels`: a seeded share of its labelled buildings is known (not scored); the rest \
         are predicted, recalibrated on them.\n"
    );
    let _ = writeln!(
        md,
        "| scenario | city | n scored | MAE | MAE, no local data | bias | 90 % coverage | median width | known buildings | measured directly | points kept / full |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for sc in &s.scenarios {
        for c in &sc.cities {
            let none = s.per_city.iter().find(|m| m.city == c.city);
            let base = none.map_or("–".into(), |m| f(m.model.mae));
            if let Some(why) = &c.skipped {
                let _ = writeln!(
                    md,
                    "| {} | {} | – | – | {base} | – | – | – | – | – | skipped: {why} |",
                    sc.name, c.city
                );
                continue;
            }
            let Some(m) = sc.per_city.iter().find(|m| m.city == c.city) else {
                continue;
            };
            let pts = if c.points_full > 0 {
                format!("{} / {}", c.points_kept, c.points_full)
            } else {
                "–".into()
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {base} | {:+.2} | {} | {} | {} | {} | {pts} |",
                sc.name,
                c.city,
                m.model.n,
                f(m.model.mae),
                m.model.bias,
                pct(m.model.coverage),
                opt(m.model.median_interval_width),
                c.known,
                c.direct,
            );
        }
    }
}
