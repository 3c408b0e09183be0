//! PNG plots drawn with `plotters` (bitmap backend; text through ab_glyph with
//! a TrueType font read at run time):
//! - `sgemm_<t>t.png`: GFLOP/s against N per library, the measured FMA peak
//!   for that thread count drawn as a dashed horizontal line;
//! - `speedup_<t>t.png`: speed-up over PyTorch (over candle when PyTorch is
//!   absent) per size for add, mul and matmul;
//! - `mlp.png`: training steps per second of the 784-256-128-10 MLP per
//!   library, batch size and thread count, on a log axis (batch 4 runs
//!   twenty times as many steps a second as batch 256).

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::report::{LIBS, Record};

type Res = Result<(), Box<dyn Error>>;

/// The default font, from the Debian/Ubuntu package fonts-dejavu-core.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Reads the font (`$COMPARE_FONT`, else [`DEFAULT_FONT`]) and registers it
/// as "sans-serif"; the error says how to get one.
pub fn load_font() -> Result<(), String> {
    let path = std::env::var("COMPARE_FONT").unwrap_or_else(|_| DEFAULT_FONT.to_string());
    let bytes = std::fs::read(&path).map_err(|e| {
        format!(
            "cannot read the font {path} ({e}): install fonts-dejavu-core \
             (apt-get install fonts-dejavu-core) or set COMPARE_FONT to a .ttf file"
        )
    })?;
    register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(bytes.into_boxed_slice()),
    )
    .map_err(|_| format!("{path} is not a usable TrueType font"))
}

fn color(lib: &str) -> RGBColor {
    match lib {
        "train-station" => RGBColor(214, 39, 40),
        "gemm" => RGBColor(31, 119, 180),
        "matrixmultiply" => RGBColor(44, 160, 44),
        "candle" => RGBColor(255, 127, 14),
        "pytorch" => RGBColor(148, 103, 189),
        "libtorch" => RGBColor(140, 86, 75),
        _ => RGBColor(127, 127, 127),
    }
}

/// The size in a case label: "N=512" -> 512, "add 1e5" -> 100000.
fn case_size(case: &str) -> Option<f64> {
    let tail = case.rsplit([' ', '=']).next()?;
    tail.parse::<f64>().ok()
}

/// The distinct sizes in `ns`, ascending.
fn sizes(ns: &[f64]) -> Vec<f64> {
    let mut v = ns.to_vec();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

/// GFLOP/s against N for `threads`, with the peak line.
fn sgemm_plot(path: &Path, records: &[Record], threads: usize, peak: f64) -> Res {
    let rs: Vec<&Record> = records
        .iter()
        .filter(|r| r.group == "sgemm" && r.threads == threads)
        .collect();
    let ns: Vec<f64> = rs.iter().filter_map(|r| case_size(&r.case)).collect();
    let (lo, hi) = ns
        .iter()
        .fold((f64::MAX, 0.0f64), |(a, b), &n| (a.min(n), b.max(n)));
    if rs.is_empty() || lo >= hi {
        return Ok(());
    }
    let ymax = rs.iter().map(|r| r.value).fold(peak, f64::max) * 1.1;
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "sgemm, {threads} thread{}: GFLOP/s against N",
                if threads == 1 { "" } else { "s" }
            ),
            ("sans-serif", 24),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            // Ticks at the measured sizes only (the log axis's own ticks at
            // 600..900 ran into 1000's label).
            (lo * 0.9..hi * 1.1).log_scale().with_key_points(sizes(&ns)),
            0.0..ymax,
        )?;
    chart
        .configure_mesh()
        .x_desc("N (square, row-major)")
        .y_desc("GFLOP/s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()?;
    chart
        .draw_series(DashedLineSeries::new(
            [(lo * 0.9, peak), (hi * 1.1, peak)],
            8,
            5,
            BLACK.stroke_width(2),
        ))?
        .label(format!("FMA peak ({peak:.0})"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
    for lib in LIBS {
        let mut pts: Vec<(f64, f64)> = rs
            .iter()
            .filter(|r| r.lib == lib)
            .filter_map(|r| Some((case_size(&r.case)?, r.value)))
            .collect();
        if pts.is_empty() {
            continue;
        }
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let c = color(lib);
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
            .label(lib)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Speed-up over `base` per size for add, mul and matmul, three panels.
fn speedup_plot(path: &Path, records: &[Record], threads: usize, base: &str) -> Res {
    let root = BitMapBackend::new(path, (1500, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(40);
    title.titled(
        &format!(
            "Speed-up over {base} ({threads} thread{}; > 1: faster than {base})",
            if threads == 1 { "" } else { "s" }
        ),
        ("sans-serif", 24),
    )?;
    let panels = body.split_evenly((1, 3));
    for (panel, (name, group, prefix)) in panels.iter().zip([
        ("add", "elementwise", "add "),
        ("mul", "elementwise", "mul "),
        ("matmul", "sgemm", "N="),
    ]) {
        let rs: Vec<&Record> = records
            .iter()
            .filter(|r| r.group == group && r.threads == threads && r.case.starts_with(prefix))
            .collect();
        let base_secs = |case: &str| {
            rs.iter()
                .find(|r| r.lib == base && r.case == case)
                .map(|r| r.secs)
        };
        let mut series: Vec<(&str, Vec<(f64, f64)>)> = Vec::new();
        for lib in LIBS.iter().copied().filter(|&l| l != base) {
            let mut pts: Vec<(f64, f64)> = rs
                .iter()
                .filter(|r| r.lib == lib)
                .filter_map(|r| Some((case_size(&r.case)?, base_secs(&r.case)? / r.secs)))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            if !pts.is_empty() {
                series.push((lib, pts));
            }
        }
        let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.1.iter().copied()).collect();
        if all.is_empty() {
            continue;
        }
        let (lo, hi) = all
            .iter()
            .fold((f64::MAX, 0.0f64), |(a, b), p| (a.min(p.0), b.max(p.0)));
        // Log scale: ratios span orders of magnitude on small sizes.
        let ymax = all.iter().map(|p| p.1).fold(1.0, f64::max) * 1.5;
        let ymin = all.iter().map(|p| p.1).fold(1.0, f64::min) / 1.5;
        let mut chart = ChartBuilder::on(panel)
            .caption(name, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((lo * 0.8..hi * 1.25).log_scale(), (ymin..ymax).log_scale())?;
        chart
            .configure_mesh()
            .x_desc(if name == "matmul" { "N" } else { "elements" })
            .y_desc("speed-up (log scale)")
            .y_label_formatter(&|y| {
                if *y >= 10.0 {
                    format!("{y:.0}")
                } else if *y >= 1.0 {
                    format!("{y:.1}")
                } else {
                    format!("{y:.2}")
                }
            })
            .x_label_formatter(&|x| {
                if *x >= 10_000.0 {
                    format!("{x:.0e}")
                } else {
                    format!("{x:.0}")
                }
            })
            .draw()?;
        chart.draw_series(DashedLineSeries::new(
            [(lo * 0.8, 1.0), (hi * 1.25, 1.0)],
            6,
            4,
            BLACK.stroke_width(1),
        ))?;
        for (lib, pts) in series {
            let c = color(lib);
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
                .label(lib)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// Grouped bars: steps/s per (batch, threads) group, one bar per library,
/// on a log axis.
fn mlp_plot(path: &Path, records: &[Record]) -> Res {
    let rs: Vec<&Record> = records.iter().filter(|r| r.group == "mlp-train").collect();
    let mut groups: Vec<(String, usize)> = Vec::new();
    for r in &rs {
        if !groups.contains(&(r.case.clone(), r.threads)) {
            groups.push((r.case.clone(), r.threads));
        }
    }
    let libs: Vec<&str> = LIBS
        .iter()
        .copied()
        .filter(|l| rs.iter().any(|r| r.lib == *l))
        .collect();
    if groups.is_empty() {
        return Ok(());
    }
    // A log axis: a small batch runs thousands of steps a second, a large one
    // hundreds, and each group's bars must stay readable.
    let ymax = rs.iter().map(|r| r.value).fold(0.0, f64::max) * 2.0;
    let ymin = rs.iter().map(|r| r.value).fold(f64::INFINITY, f64::min) / 2.0;
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let labels: Vec<String> = groups.iter().map(|(c, t)| format!("{c}, {t}t")).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "MLP 784-256-128-10 training step (Adam): steps/s",
            ("sans-serif", 24),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..groups.len() as f64 - 0.5, (ymin..ymax).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len())
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| format!("{v:.0}"))
        .y_desc("steps/s (log scale)")
        .draw()?;
    let w = 0.8 / libs.len() as f64;
    for (k, lib) in libs.iter().enumerate() {
        let c = color(lib);
        let bars: Vec<Rectangle<(f64, f64)>> = groups
            .iter()
            .enumerate()
            .filter_map(|(g, (case, t))| {
                let r = rs
                    .iter()
                    .find(|r| r.lib == *lib && &r.case == case && r.threads == *t)?;
                let x0 = g as f64 - 0.4 + k as f64 * w;
                Some(Rectangle::new(
                    [(x0, ymin), (x0 + w * 0.9, r.value)],
                    c.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(bars)?
            .label(*lib)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Draws every plot into `dir`; returns the files written.
pub fn draw_all(
    dir: &Path,
    records: &[Record],
    peak: impl Fn(usize) -> f64,
) -> Result<Vec<String>, Box<dyn Error>> {
    let mut files = Vec::new();
    let mut threads: Vec<usize> = records.iter().map(|r| r.threads).collect();
    threads.sort_unstable();
    threads.dedup();
    let base = if records.iter().any(|r| r.lib == "pytorch") {
        "pytorch"
    } else {
        "candle"
    };
    for &t in &threads {
        if records.iter().any(|r| r.group == "sgemm" && r.threads == t) {
            let f = format!("sgemm_{t}t.png");
            sgemm_plot(&dir.join(&f), records, t, peak(t))?;
            files.push(f);
            let f = format!("speedup_{t}t.png");
            speedup_plot(&dir.join(&f), records, t, base)?;
            files.push(f);
        }
    }
    mlp_plot(&dir.join("mlp.png"), records)?;
    files.push("mlp.png".to_string());
    Ok(files)
}
