//! `roofline report CV_DIR` (render a cross-validation's report.html again) and the HTML map
//! output of `predict` (`-o city.html`).

use std::path::Path;

use roofline::error::Result;
use roofline::io::output::write_text;
use roofline::io::table::Table;
use roofline::render::map::MapLayer;

pub fn run(dir: &Path) -> Result<()> {
    let out = roofline::render::html::rerender(dir)?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Whether an output path asks for the 3D map page instead of a table.
pub fn is_html(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"))
}

/// `predict`'s table as a 3D map page: buildings extruded to their height, coloured by it.
pub fn write_map(table: &Table, path: &Path) -> Result<()> {
    let layer = MapLayer::from_predictions(table)?;
    let cities: Vec<&str> = layer.cities.iter().map(|(c, _)| c.as_str()).collect();
    write_text(
        path,
        &layer.page(&format!("roofline heights: {}", cities.join(", "))),
    )?;
    println!(
        "wrote {} (3D map of {} buildings, WGS 84)",
        path.display(),
        layer.buildings
    );
    Ok(())
}
