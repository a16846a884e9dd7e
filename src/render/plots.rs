//! The SVG plots of `report.html`, drawn with plotters' SVG backend (no bitmap backend, no font
//! files: text is left to the browser). SVG keeps the report one self-contained text file that
//! stays sharp when zoomed; points are sampled (evenly, so deterministically) to keep it small.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::eval::cv::CityMetrics;

/// One held-out building as the plots need it.
#[derive(Clone, Debug)]
pub struct PlotRow {
    /// Measured height (m).
    pub truth: f64,
    /// Predicted height (m).
    pub predicted: f64,
    /// Lower end of the 90 % interval (m; NaN without intervals).
    pub lo: f64,
    /// Upper end of the 90 % interval (m; NaN without intervals).
    pub hi: f64,
    /// Some feature lay outside the training range.
    pub ood: bool,
    /// Footprint centre in metres (any origin), when the predictions carry footprints.
    pub centre: Option<(f64, f64)>,
}

/// At most this many points per scatter and per error map.
pub const MAX_POINTS: usize = 1500;
/// Interval bars drawn on each scatter.
pub const INTERVAL_BARS: usize = 60;

const FONT: &str = "sans-serif";
const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(230, 120, 20);
const GREY: RGBColor = RGBColor(120, 120, 120);

fn err<E: std::fmt::Display>(e: E) -> Error {
    Error::invalid(format!("cannot draw a plot: {e}"))
}

/// `k` indices spread evenly over `0..n` (all of them when `n <= k`).
pub fn even_sample(n: usize, k: usize) -> Vec<usize> {
    if n <= k {
        return (0..n).collect();
    }
    (0..k).map(|j| j * n / k).collect()
}

fn svg(
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<SVGBackend, Shift>) -> Result<()>,
) -> Result<String> {
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(root.clone())?;
        root.present().map_err(err)?;
    }
    Ok(s)
}

/// Predicted against measured height for one held-out city: a point per building (sampled),
/// the 1:1 line, and the 90 % interval of an even sample of buildings as vertical bars.
pub fn scatter(city: &str, rows: &[PlotRow]) -> Result<String> {
    let finite: Vec<&PlotRow> = rows
        .iter()
        .filter(|r| r.truth.is_finite() && r.predicted.is_finite())
        .collect();
    let top = finite
        .iter()
        .map(|r| r.truth.max(r.predicted))
        .fold(10.0_f64, f64::max)
        .min(120.0)
        * 1.05;
    svg((420, 400), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{city}: predicted vs measured"), (FONT, 16))
            .margin(8)
            .x_label_area_size(38)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..top, 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("measured height (m)")
            .y_desc("predicted (m)")
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        let bars = even_sample(finite.len(), INTERVAL_BARS);
        chart
            .draw_series(
                bars.iter()
                    .map(|&i| finite[i])
                    .filter(|r| r.lo.is_finite() && r.hi.is_finite())
                    .map(|r| {
                        PathElement::new(
                            vec![(r.truth, r.lo.max(0.0)), (r.truth, r.hi.min(top))],
                            ORANGE.mix(0.6).stroke_width(1),
                        )
                    }),
            )
            .map_err(err)?
            .label("90 % interval (sample)")
            .legend(|(x, y)| PathElement::new(vec![(x + 5, y - 5), (x + 5, y + 5)], ORANGE));
        chart
            .draw_series(even_sample(finite.len(), MAX_POINTS).into_iter().map(|i| {
                Circle::new(
                    (finite[i].truth, finite[i].predicted),
                    2,
                    BLUE.mix(0.45).filled(),
                )
            }))
            .map_err(err)?
            .label(format!(
                "buildings ({} shown of {})",
                finite.len().min(MAX_POINTS),
                finite.len()
            ))
            .legend(|(x, y)| Circle::new((x + 5, y), 3, BLUE.filled()));
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, 0.0), (top, top)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?
            .label("1:1")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 10, y)], BLACK));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(GREY)
            .label_font((FONT, 11))
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

/// Residual (predicted − measured) by true-height bin, per city: the 10th–90th percentile range
/// of the residuals as a bar and the bias (mean residual, as in metrics.json) as a dot.
pub fn residual_by_bin(cities: &[(&CityMetrics, Vec<PlotRow>)]) -> Result<String> {
    let bins: Vec<String> = cities
        .first()
        .map(|(c, _)| c.model.bins.iter().map(|b| b.bin.clone()).collect())
        .unwrap_or_default();
    let edges = bin_edges(&bins);
    let mut lo_y: f64 = -5.0;
    let mut hi_y: f64 = 5.0;
    let mut spans = Vec::new();
    for (k, (c, rows)) in cities.iter().enumerate() {
        for (b, m) in c.model.bins.iter().enumerate() {
            let Some((a, z)) = edges.get(b).copied() else {
                continue;
            };
            let mut r: Vec<f64> = rows
                .iter()
                .filter(|r| r.truth >= a && r.truth < z && r.predicted.is_finite())
                .map(|r| r.predicted - r.truth)
                .collect();
            if r.is_empty() {
                continue;
            }
            r.sort_by(f64::total_cmp);
            let p10 = crate::stats::percentile::percentile_sorted(&r, 10.0);
            let p90 = crate::stats::percentile::percentile_sorted(&r, 90.0);
            lo_y = lo_y.min(p10);
            hi_y = hi_y.max(p90);
            spans.push((k, b, p10, p90, m.bias));
        }
    }
    let (lo_y, hi_y) = (lo_y.max(-40.0) - 1.0, hi_y.min(40.0) + 1.0);
    let n = cities.len().max(1) as f64;
    svg((760, 360), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Residual by measured-height bin (bar: 10th–90th percentile, dot: bias)",
                (FONT, 15),
            )
            .margin(8)
            .x_label_area_size(38)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..bins.len().max(1) as f64, lo_y..hi_y)
            .map_err(err)?;
        let labels = bins.clone();
        chart
            .configure_mesh()
            .x_labels(bins.len().max(1) * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - i as f64 - 0.5).abs() < 1e-6 && i < labels.len() {
                    format!("{} m", labels[i])
                } else {
                    String::new()
                }
            })
            .x_desc("measured height bin")
            .y_desc("predicted − measured (m)")
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, 0.0), (bins.len() as f64, 0.0)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
        for (k, (c, _)) in cities.iter().enumerate() {
            let colour = Palette99::pick(k).to_rgba();
            let x = |b: usize| b as f64 + (k as f64 + 0.5) / n * 0.8 + 0.1;
            let mine: Vec<_> = spans.iter().filter(|s| s.0 == k).collect();
            chart
                .draw_series(mine.iter().map(|s| {
                    PathElement::new(
                        vec![(x(s.1), s.2.max(lo_y)), (x(s.1), s.3.min(hi_y))],
                        colour.stroke_width(4),
                    )
                }))
                .map_err(err)?
                .label(c.city.clone())
                .legend(move |(x, y)| Circle::new((x + 5, y), 4, colour.filled()));
            chart
                .draw_series(mine.iter().filter_map(|s| {
                    s.4.map(|bias| Circle::new((x(s.1), bias.clamp(lo_y, hi_y)), 4, BLACK.filled()))
                }))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(GREY)
            .label_font((FONT, 11))
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

/// Lower and upper bounds of bins labelled like `0-6`, `6-12`, `20+` (metres).
fn bin_edges(bins: &[String]) -> Vec<(f64, f64)> {
    bins.iter()
        .map(|b| {
            let b = b.trim();
            if let Some(a) = b.strip_suffix('+') {
                (a.parse().unwrap_or(f64::NAN), f64::INFINITY)
            } else {
                let mut it = b.splitn(2, ['-', '–']);
                let a = it
                    .next()
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(f64::NAN);
                let z = it
                    .next()
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(f64::NAN);
                (a, z)
            }
        })
        .collect()
}

/// Grouped bars, one group per city: (label, value or None) per bar; a dashed reference line.
fn grouped_bars(
    caption: &str,
    y_desc: &str,
    groups: &[(String, Vec<Option<f64>>)],
    series: &[&str],
    y_max: f64,
    reference: Option<(f64, &str)>,
    percent: bool,
) -> Result<String> {
    let width = (140 + 110 * groups.len()).clamp(420, 900) as u32;
    let k = series.len().max(1) as f64;
    svg((width, 370), |root| {
        // The legend gets its own strip under the chart: drawn inside it, it covered bars.
        let (plot, strip) = root.split_vertically(340);
        let mut chart = ChartBuilder::on(&plot)
            .caption(caption, (FONT, 15))
            .margin(8)
            .x_label_area_size(38)
            .y_label_area_size(52)
            .build_cartesian_2d(0.0..groups.len().max(1) as f64, 0.0..y_max)
            .map_err(err)?;
        let names: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
        chart
            .configure_mesh()
            .x_labels(groups.len().max(1) * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - i as f64 - 0.5).abs() < 1e-6 && i < names.len() {
                    names[i].clone()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| {
                if percent {
                    format!("{:.0} %", y * 100.0)
                } else if y.fract().abs() < 1e-9 {
                    format!("{y:.0}")
                } else {
                    format!("{y:.1}")
                }
            })
            .y_desc(y_desc)
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        let colours: Vec<RGBColor> = series
            .iter()
            .enumerate()
            .map(|(s, name)| series_colour(name, s))
            .collect();
        for (s, colour) in colours.iter().enumerate() {
            chart
                .draw_series(groups.iter().enumerate().filter_map(|(g, (_, v))| {
                    let v = v.get(s).copied().flatten()?;
                    let x0 = g as f64 + 0.1 + 0.8 * s as f64 / k;
                    Some(Rectangle::new(
                        [(x0, 0.0), (x0 + 0.8 / k * 0.9, v.min(y_max))],
                        colour.filled(),
                    ))
                }))
                .map_err(err)?;
        }
        if let Some((y, _)) = reference {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(0.0, y), (groups.len() as f64, y)],
                    6,
                    4,
                    BLACK.stroke_width(1),
                ))
                .map_err(err)?;
        }
        let style = (FONT, 11).into_font().color(&BLACK);
        let mut x = 60;
        for (name, colour) in series.iter().zip(&colours) {
            strip
                .draw(&Rectangle::new([(x, 10), (x + 10, 20)], colour.filled()))
                .map_err(err)?;
            strip
                .draw(&Text::new(*name, (x + 14, 9), style.clone()))
                .map_err(err)?;
            x += 28 + 6 * name.len() as i32;
        }
        if let Some((_, label)) = reference {
            strip
                .draw(&PathElement::new(vec![(x, 15), (x + 14, 15)], BLACK))
                .map_err(err)?;
            strip
                .draw(&Text::new(label, (x + 18, 9), style))
                .map_err(err)?;
        }
        Ok(())
    })
}

/// One colour per meaning across the report's bar charts (the same series is the same colour
/// in every chart): blue in the training range, orange out of it, grey for everything or the
/// baseline.
fn series_colour(name: &str, index: usize) -> RGBColor {
    match name {
        "in training range" => BLUE,
        "ood" => ORANGE,
        "all" | "baseline (all)" => GREY,
        _ => {
            let c = Palette99::pick(index).to_rgba();
            RGBColor(c.0, c.1, c.2)
        }
    }
}

/// 90 % interval coverage per city (all buildings, inside and outside the training range)
/// against the nominal 90 %.
pub fn coverage(cities: &[&CityMetrics]) -> Result<String> {
    let groups: Vec<(String, Vec<Option<f64>>)> = cities
        .iter()
        .map(|c| {
            (
                c.city.clone(),
                vec![
                    c.model.coverage,
                    c.in_range.as_ref().and_then(|m| m.coverage),
                    c.ood.as_ref().and_then(|m| m.coverage),
                ],
            )
        })
        .collect();
    grouped_bars(
        "90 % interval coverage vs nominal",
        "share of buildings inside their interval",
        &groups,
        &["all", "in training range", "ood"],
        1.08,
        Some((0.9, "nominal 90 %")),
        true,
    )
}

/// MAE of buildings flagged `ood` (a feature outside the training range) and of the others.
pub fn error_by_ood(cities: &[&CityMetrics]) -> Result<String> {
    let groups: Vec<(String, Vec<Option<f64>>)> = cities
        .iter()
        .map(|c| {
            (
                c.city.clone(),
                vec![
                    c.in_range.as_ref().map(|m| m.mae),
                    c.ood.as_ref().map(|m| m.mae),
                    Some(c.baseline.mae),
                ],
            )
        })
        .collect();
    let top = groups
        .iter()
        .flat_map(|g| g.1.iter().flatten())
        .copied()
        .filter(|v| v.is_finite())
        .fold(1.0_f64, f64::max)
        * 1.2;
    grouped_bars(
        "Error vs ood: MAE in and out of the training range",
        "MAE (m)",
        &groups,
        &["in training range", "ood", "baseline (all)"],
        top,
        None,
        false,
    )
}

/// Where the errors are: each building's centre coloured by predicted − measured (blue too
/// low, red too high, ±10 m saturates), one panel per city.
pub fn error_map(city: &str, rows: &[PlotRow]) -> Result<Option<String>> {
    let pts: Vec<(f64, f64, f64)> = rows
        .iter()
        .filter_map(|r| r.centre.map(|(x, y)| (x, y, r.predicted - r.truth)))
        .filter(|p| p.0.is_finite() && p.1.is_finite() && p.2.is_finite())
        .collect();
    if pts.is_empty() {
        return Ok(None);
    }
    let (x0, x1) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
        (a.0.min(p.0), a.1.max(p.0))
    });
    let (y0, y1) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
        (a.0.min(p.1), a.1.max(p.1))
    });
    let span = (x1 - x0).max(y1 - y0).max(1.0) * 1.04;
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let size = 380;
    Ok(Some(svg((size, size + 60), |root| {
        let (map, scale) = root.split_vertically(size + 30);
        let mut chart = ChartBuilder::on(&map)
            .caption(format!("{city}: error map (m)"), (FONT, 15))
            .margin(6)
            .build_cartesian_2d(
                cx - span / 2.0..cx + span / 2.0,
                cy - span / 2.0..cy + span / 2.0,
            )
            .map_err(err)?;
        chart
            .draw_series(
                even_sample(pts.len(), MAX_POINTS * 2)
                    .into_iter()
                    .map(|i| Circle::new((pts[i].0, pts[i].1), 2, diverging(pts[i].2).filled())),
            )
            .map_err(err)?;
        colour_scale(&scale, size as i32)
    })?))
}

/// The error maps' colour scale: predicted − measured from −10 m (too low) to +10 m (too high).
fn colour_scale(area: &DrawingArea<SVGBackend<'_>, Shift>, width: i32) -> Result<()> {
    let (x0, x1) = (40, width - 40);
    let steps = 40;
    for i in 0..steps {
        let a = x0 + (x1 - x0) * i / steps;
        let b = x0 + (x1 - x0) * (i + 1) / steps;
        let e = -10.0 + 20.0 * (i as f64 + 0.5) / steps as f64;
        area.draw(&Rectangle::new([(a, 4), (b, 14)], diverging(e).filled()))
            .map_err(err)?;
    }
    let style = (FONT, 10).into_font().color(&BLACK);
    for (text, x) in [
        ("≤ −10 m too low", x0),
        ("0", (x0 + x1) / 2),
        ("≥ +10 m too high", x1 - 80),
    ] {
        area.draw(&Text::new(text, (x, 17), style.clone()))
            .map_err(err)?;
    }
    Ok(())
}

/// Blue (−10 m) – light grey (0) – red (+10 m).
fn diverging(e: f64) -> RGBColor {
    let t = (e / 10.0).clamp(-1.0, 1.0);
    let mix = |a: u8, b: u8, s: f64| (a as f64 + (b as f64 - a as f64) * s).round() as u8;
    let (g, far) = (
        (235u8, 235u8, 235u8),
        if t < 0.0 {
            (33u8, 102u8, 172u8)
        } else {
            (178u8, 24u8, 43u8)
        },
    );
    let s = t.abs();
    RGBColor(mix(g.0, far.0, s), mix(g.1, far.1, s), mix(g.2, far.2, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_sample_spreads_over_all_rows_without_repeats() {
        let s = even_sample(10_381, 1500);
        assert_eq!(s.len(), 1500);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert!(
            *s.last().unwrap() > 10_000,
            "reaches the end: {:?}",
            s.last()
        );
        assert_eq!(even_sample(7, 1500), (0..7).collect::<Vec<_>>());
    }

    #[test]
    fn bin_labels_parse_to_edges() {
        let e = bin_edges(&["0-6".into(), "6-12".into(), "40+".into()]);
        assert_eq!(e[0], (0.0, 6.0));
        assert_eq!(e[1], (6.0, 12.0));
        assert_eq!(e[2], (40.0, f64::INFINITY));
    }
}
