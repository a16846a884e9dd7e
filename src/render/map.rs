//! The 3D map of buildings: footprints extruded to their height with MapLibre GL JS
//! (`fill-extrusion`), coloured by height (`predict ... -o city.html`) or by signed error (inside
//! `report.html`), with a popup giving id, heights, interval, source and `ood`.
//!
//! Everything is inlined: the vendored MapLibre build (assets/vendor/maplibre-gl), the style (a
//! plain background, no tiles) and the buildings as compact GeoJSON in WGS 84 (coordinates
//! rounded to 1e-6°, about 0.1 m; heights to 0.1 m), so the page works offline from disk.

use std::fmt::Write as _;

use geo::{BoundingRect, MultiPolygon};
use serde_json::json;

use crate::crs::Crs;
use crate::error::{Error, Result};
use crate::features::reproject_many;
use crate::io::table::{Column, Table};

/// MapLibre GL JS 5 (BSD-3-Clause), vendored unmodified from its npm package.
const MAPLIBRE_JS: &str = include_str!("../../assets/vendor/maplibre-gl/maplibre-gl.js");
const MAPLIBRE_CSS: &str = include_str!("../../assets/vendor/maplibre-gl/maplibre-gl.css");
/// roofline's map code (one function, `rooflineMap`), shared by the map page and the report.
const MAP_JS: &str = include_str!("map.js");

/// What colours the buildings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colour {
    /// The building's height (measured or predicted).
    Height,
    /// Predicted − measured height: the error of a model that never saw the building.
    Error,
}

/// The buildings of a map, ready to inline.
#[derive(Clone, Debug)]
pub struct MapLayer {
    /// What the extrusions are coloured by.
    pub colour: Colour,
    /// GeoJSON FeatureCollection (WGS 84), one feature per building with a footprint.
    pub geojson: String,
    /// Each city's bounds (west, south, east, north), in the order cities first appear.
    pub cities: Vec<(String, [f64; 4])>,
    /// Buildings drawn (those with a footprint).
    pub buildings: usize,
}

/// One building's popup and styling values (rounded when written).
struct Building<'a> {
    id: &'a str,
    city: &'a str,
    height: Option<f64>,
    predicted: Option<f64>,
    measured: Option<f64>,
    lo: Option<f64>,
    hi: Option<f64>,
    source: &'a str,
    ood: Option<bool>,
}

fn column<'a>(t: &'a Table, name: &str) -> Result<&'a Column> {
    t.column(name)
        .ok_or_else(|| Error::invalid(format!("the table has no '{name}' column")))
}

fn floats(t: &Table, name: &str) -> Result<Vec<Option<f64>>> {
    Ok(column(t, name)?
        .as_f64()
        .into_iter()
        .map(|v| v.is_finite().then_some(v))
        .collect())
}

fn strings(t: &Table, name: &str) -> Vec<String> {
    t.column(name)
        .map(|c| c.as_strings())
        .unwrap_or_else(|| vec![String::new(); t.n_rows()])
}

fn bools(t: &Table, name: &str) -> Vec<Option<bool>> {
    match t.column(name).map(|c| &c.data) {
        Some(crate::io::table::ColumnData::Bool(v)) => v.clone(),
        _ => vec![None; t.n_rows()],
    }
}

/// Footprints of `t` in WGS 84.
fn wgs84_geometry(t: &Table) -> Result<Vec<MultiPolygon<f64>>> {
    let geometry = t
        .geometry
        .as_ref()
        .ok_or_else(|| Error::invalid("the table has no footprints to map"))?;
    let crs = t
        .crs
        .as_ref()
        .ok_or_else(|| Error::invalid("the table's footprints have no CRS"))?;
    reproject_many(geometry, crs, &Crs::from_epsg(4326)?)
}

impl MapLayer {
    /// The output of `predict`: extruded to `height_m` (measured or predicted), coloured by it.
    pub fn from_predictions(t: &Table) -> Result<MapLayer> {
        let geometry = wgs84_geometry(t)?;
        let (ids, cities, sources) = (strings(t, "id"), strings(t, "city"), strings(t, "source"));
        let (h, lo, hi) = (
            floats(t, "height_m")?,
            floats(t, "height_lo_m")?,
            floats(t, "height_hi_m")?,
        );
        let predicted = floats(t, "height_predicted_m").unwrap_or_else(|_| vec![None; h.len()]);
        let ood = bools(t, "ood");
        let buildings = (0..t.n_rows()).map(|i| Building {
            id: &ids[i],
            city: &cities[i],
            height: h[i],
            predicted: predicted[i],
            measured: (sources[i] == "measured").then_some(h[i]).flatten(),
            lo: lo[i],
            hi: hi[i],
            source: &sources[i],
            ood: ood[i],
        });
        Ok(Self::build(Colour::Height, &geometry, buildings))
    }

    /// Held-out buildings of a cross-validation (scenario `none`: the model alone), extruded
    /// to their measured height, coloured by predicted − measured.
    pub fn from_cv(t: &Table) -> Result<MapLayer> {
        let geometry = wgs84_geometry(t)?;
        let (ids, cities, sources) = (strings(t, "id"), strings(t, "city"), strings(t, "source"));
        let scenario = strings(t, "scenario");
        let (truth, predicted, lo, hi) = (
            floats(t, "height_m")?,
            floats(t, "height_predicted_m")?,
            floats(t, "height_lo_m")?,
            floats(t, "height_hi_m")?,
        );
        let ood = bools(t, "ood");
        let keep: Vec<usize> = (0..t.n_rows())
            .filter(|&i| scenario[i].is_empty() || scenario[i] == crate::eval::rows::NO_SCENARIO)
            .collect();
        let geometry: Vec<MultiPolygon<f64>> = keep.iter().map(|&i| geometry[i].clone()).collect();
        let buildings = keep.iter().map(|&i| Building {
            id: &ids[i],
            city: &cities[i],
            height: truth[i],
            predicted: predicted[i],
            measured: truth[i],
            lo: lo[i],
            hi: hi[i],
            source: &sources[i],
            ood: ood[i],
        });
        Ok(Self::build(Colour::Error, &geometry, buildings))
    }

    fn build<'a>(
        colour: Colour,
        geometry: &[MultiPolygon<f64>],
        buildings: impl Iterator<Item = Building<'a>>,
    ) -> MapLayer {
        let mut out = String::from(r#"{"type":"FeatureCollection","features":["#);
        let mut cities: Vec<(String, [f64; 4])> = Vec::new();
        let mut n = 0;
        for (g, b) in geometry.iter().zip(buildings) {
            let Some(rect) = g.bounding_rect() else {
                continue; // no usable footprint
            };
            let r = [rect.min().x, rect.min().y, rect.max().x, rect.max().y];
            match cities.iter_mut().find(|(c, _)| c == b.city) {
                Some((_, bb)) => {
                    *bb = [
                        bb[0].min(r[0]),
                        bb[1].min(r[1]),
                        bb[2].max(r[2]),
                        bb[3].max(r[3]),
                    ]
                }
                None => cities.push((b.city.to_string(), r)),
            }
            if n > 0 {
                out.push(',');
            }
            n += 1;
            let mut props = serde_json::Map::new();
            props.insert("i".into(), json!(b.id));
            props.insert("c".into(), json!(b.city));
            props.insert("s".into(), json!(b.source));
            let mut put = |k: &str, v: Option<f64>| {
                if let Some(v) = v {
                    props.insert(k.into(), json!(round1(v)));
                }
            };
            put("h", b.height);
            put("p", b.predicted);
            put("m", b.measured);
            put("lo", b.lo);
            put("hi", b.hi);
            if colour == Colour::Error {
                put("e", b.predicted.zip(b.measured).map(|(p, m)| p - m));
            }
            if let Some(o) = b.ood {
                props.insert("o".into(), json!(o));
            }
            let _ = write!(
                out,
                r#"{{"type":"Feature","properties":{},"geometry":"#,
                serde_json::Value::Object(props)
            );
            write_multipolygon(&mut out, g);
            out.push('}');
        }
        out.push_str("]}");
        MapLayer {
            colour,
            geojson: out,
            cities,
            buildings: n,
        }
    }

    /// The data block and a call of `rooflineMap` drawing into a new element with id `id`;
    /// the page must carry [`head_assets`] once.
    pub fn embed(&self, id: &str, height_css: &str) -> String {
        let meta = json!({
            "colour": match self.colour { Colour::Height => "height", Colour::Error => "error" },
            "cities": self.cities.iter().map(|(c, b)| json!({"city": c, "bounds": b})).collect::<Vec<_>>(),
        });
        format!(
            r#"<div class="roofline-map" id="{id}" style="height:{height_css}"></div>
<script type="application/json" id="{id}-meta">{}</script>
<script type="application/json" id="{id}-data">{}</script>
<script>rooflineMap("{id}");</script>
"#,
            script_safe(&meta.to_string()),
            script_safe(&self.geojson)
        )
    }

    /// A whole page: the map filling the window.
    pub fn page(&self, title: &str) -> String {
        format!(
            r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{}</title>
{}
<style>html,body{{margin:0;height:100%;font-family:system-ui,sans-serif}}</style>
</head><body>
{}</body></html>
"#,
            escape(title),
            head_assets(),
            self.embed("map", "100vh")
        )
    }
}

/// MapLibre's script and style and roofline's map code, inlined; once per page.
pub fn head_assets() -> String {
    // The source map comment would make the browser's developer tools ask for a missing file.
    let js = MAPLIBRE_JS.replace("//# sourceMappingURL=maplibre-gl.js.map", "");
    format!(
        "<style>{MAPLIBRE_CSS}</style>\n<style>{}</style>\n<script>{js}</script>\n<script>{MAP_JS}</script>\n",
        MAP_CSS
    )
}

const MAP_CSS: &str = ".roofline-map{position:relative;width:100%;min-height:300px}\
.roofline-legend{position:absolute;left:10px;bottom:10px;background:rgba(255,255,255,.92);\
padding:6px 8px;font:12px system-ui,sans-serif;border-radius:4px;z-index:2}\
.roofline-legend .bar{width:180px;height:10px;margin:3px 0}\
.roofline-legend .ticks{display:flex;justify-content:space-between}\
.roofline-cities{position:absolute;left:10px;top:10px;z-index:2;display:flex;gap:4px;flex-wrap:wrap}\
.roofline-cities button{font:12px system-ui,sans-serif;padding:3px 7px;border:1px solid #888;\
background:#fff;border-radius:3px;cursor:pointer}\
.maplibregl-popup-content{font:12px system-ui,sans-serif}";

/// Text for inside `<script>`: `<` escaped so a value cannot close the element.
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
}

/// Text for HTML content and attributes.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// A coordinate rounded to 1e-6° (about 0.1 m), without trailing zeros.
fn coord(out: &mut String, v: f64) {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    out.push_str(if s == "-0" { "0" } else { s });
}

fn write_multipolygon(out: &mut String, g: &MultiPolygon<f64>) {
    out.push_str(r#"{"type":"MultiPolygon","coordinates":["#);
    for (k, p) in g.0.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        out.push('[');
        for (j, ring) in std::iter::once(p.exterior())
            .chain(p.interiors())
            .enumerate()
        {
            if j > 0 {
                out.push(',');
            }
            out.push('[');
            for (i, c) in ring.coords().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('[');
                coord(out, c.x);
                out.push(',');
                coord(out, c.y);
                out.push(']');
            }
            out.push(']');
        }
        out.push(']');
    }
    out.push_str("]}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_are_rounded_to_a_micro_degree() {
        let mut s = String::new();
        coord(&mut s, 4.123_456_789);
        s.push(' ');
        coord(&mut s, -0.000_000_1);
        s.push(' ');
        coord(&mut s, 52.5);
        assert_eq!(s, "4.123457 0 52.5");
    }

    #[test]
    fn script_text_cannot_close_its_element() {
        let s = script_safe(r#"{"i":"</script><script>alert(1)</script>"}"#);
        assert!(!s.contains("</script"), "{s}");
    }
}
