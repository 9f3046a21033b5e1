//! The scale curve as a picture: one panel per figure, users on a log axis against the
//! figure on a log axis, a line per store (and per build with a baseline).
//!
//! Text needs a font file; plotters' `ab_glyph` reads it as bytes, so nothing depends on
//! the system's font libraries. Debian's fonts-dejavu-core (bench/run.sh installs it) or
//! any of the usual sans fonts will do.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

/// One line of one panel.
pub struct Curve {
    pub panel: usize,
    pub title: &'static str,
    pub label: String,
    pub database: bool,
    pub baseline: bool,
    /// (users, value), by size.
    pub points: Vec<(f64, f64)>,
}

const FONTS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

fn failed(err: impl std::fmt::Display) -> String {
    err.to_string()
}

/// Draws `curves` into a PNG at `path`.
///
/// # Errors
/// Why not: no font, or the drawing failed.
pub fn draw(path: &Path, curves: &[Curve]) -> Result<(), String> {
    let font = FONTS
        .iter()
        .find_map(|candidate| std::fs::read(candidate).ok())
        .ok_or("no font found (bench/run.sh installs fonts-dejavu-core)")?;
    // Registered fonts live for the program; this one is read once per run.
    register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .map_err(|_| "the font file is not a usable font")?;

    let root = BitMapBackend::new(path, (1500, 1000)).into_drawing_area();
    root.fill(&WHITE).map_err(failed)?;
    let root = root
        .titled(
            "Roster at scale: each figure (log) against the number of users (log)",
            ("sans-serif", 26),
        )
        .map_err(failed)?;
    let (legend, panels) = root.split_vertically(40);
    draw_legend(&legend, curves)?;
    for (index, area) in panels.split_evenly((2, 3)).iter().enumerate() {
        let lines: Vec<&Curve> = curves
            .iter()
            .filter(|curve| curve.panel == index && !curve.points.is_empty())
            .collect();
        let Some(first) = lines.first() else { continue };
        let points = lines.iter().flat_map(|curve| curve.points.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in points {
            (x0, x1) = (x0.min(x), x1.max(x));
            (y0, y1) = (y0.min(y.max(1e-3)), y1.max(y.max(1e-3)));
        }
        // Whole decades on both axes, so that each has labels, and round ones.
        let decades = |low: f64, high: f64| {
            let floor = low.log10().floor();
            (
                10f64.powf(floor),
                10f64.powf(high.log10().ceil().max(floor + 1.0)),
            )
        };
        let ((x0, x1), (y0, y1)) = (decades(x0, x1), decades(y0, y1));
        let mut chart = ChartBuilder::on(area)
            .caption(first.title, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
            .map_err(failed)?;
        chart
            .configure_mesh()
            .x_desc("users")
            .x_labels(4)
            .y_labels(6)
            .x_label_formatter(&|x| users(*x))
            .y_label_formatter(&|y| value(*y))
            .label_style(("sans-serif", 14))
            .bold_line_style(BLACK.mix(0.15))
            .light_line_style(BLACK.mix(0.04))
            .draw()
            .map_err(failed)?;
        for line in lines {
            let color = color_of(line);
            if line.baseline {
                chart
                    .draw_series(DashedLineSeries::new(
                        line.points.clone(),
                        8,
                        5,
                        color.stroke_width(2),
                    ))
                    .map_err(failed)?;
            } else {
                chart
                    .draw_series(LineSeries::new(line.points.clone(), color.stroke_width(3)))
                    .map_err(failed)?;
            }
            chart
                .draw_series(
                    line.points
                        .iter()
                        .map(|&point| Circle::new(point, 4, color.filled())),
                )
                .map_err(failed)?;
        }
    }
    root.present().map_err(failed)
}

fn color_of(line: &Curve) -> RGBColor {
    match (line.database, line.baseline) {
        (false, false) => RGBColor(200, 60, 40),
        (false, true) => RGBColor(235, 150, 120),
        (true, false) => RGBColor(40, 90, 200),
        (true, true) => RGBColor(130, 165, 235),
    }
}

/// One strip above the panels naming each line once (every panel has the same lines).
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    curves: &[Curve],
) -> Result<(), String> {
    let mut seen: Vec<(&str, RGBColor, bool)> = Vec::new();
    for curve in curves {
        if !seen.iter().any(|(label, _, _)| *label == curve.label) {
            seen.push((&curve.label, color_of(curve), curve.baseline));
        }
    }
    let mut x = 60;
    for (label, color, baseline) in seen {
        let style = color.stroke_width(if baseline { 2 } else { 3 });
        let segment = vec![(x, 20), (x + 40, 20)];
        if baseline {
            area.draw(&PathElement::new(vec![(x, 20), (x + 15, 20)], style))
                .map_err(failed)?;
            area.draw(&PathElement::new(vec![(x + 25, 20), (x + 40, 20)], style))
                .map_err(failed)?;
        } else {
            area.draw(&PathElement::new(segment, style)).map_err(failed)?;
        }
        area.draw(&Text::new(label.to_owned(), (x + 50, 12), ("sans-serif", 16)))
            .map_err(failed)?;
        x += 60 + 9 * label.chars().count() as i32 + 40;
    }
    Ok(())
}

fn users(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{}M", x / 1e6),
        x if x >= 1e3 => format!("{}k", x / 1e3),
        x => format!("{x}"),
    }
}

fn value(y: f64) -> String {
    match y {
        y if y >= 1e6 => format!("{:.0}M", y / 1e6),
        y if y >= 1e4 => format!("{:.0}k", y / 1e3),
        y if y >= 1.0 => format!("{y:.0}"),
        y => format!("{y:.2}"),
    }
}
