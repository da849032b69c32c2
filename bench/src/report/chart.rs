//! The PNG chart of the load cases: two panels of horizontal bars in the report's row order,
//! median req/s on top and median p99 ms below. Baseline cases are grey, HTTP cases blue and
//! gRPC cases orange, each value written at the end of its bar. Text needs a font, which the
//! caller registers (`register_font`) before drawing.

use std::path::Path;

use plotters::{
    coord::Shift,
    prelude::*,
    style::text_anchor::{HPos, Pos, VPos},
};

use super::{
    markdown::{ms, thousands},
    summary::LoadRow,
};
use crate::BoxError;

/// The font family every text of the chart uses.
pub const FAMILY: &str = "sans-serif";

const WIDTH: u32 = 1400;
const ROW_HEIGHT: u32 = 34;
/// Caption, axis and margins of one panel.
const PANEL_EXTRA: u32 = 110;
const BASELINE: RGBColor = RGBColor(150, 150, 150);
const HTTP: RGBColor = RGBColor(31, 119, 180);
const GRPC: RGBColor = RGBColor(255, 127, 14);
const OTHER: RGBColor = RGBColor(148, 103, 189);

/// Makes `bytes` (a TrueType font) the chart's font; false if it is not a font.
pub fn register_font(bytes: &'static [u8]) -> bool {
    plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).is_ok()
}

/// Draws the chart of `rows` into the PNG file `path`.
pub fn draw(rows: &[LoadRow], path: &Path) -> Result<(), BoxError> {
    let count = u32::try_from(rows.len()).map_err(|_| "too many load cases to draw")?;
    let panel_height = PANEL_EXTRA + ROW_HEIGHT * count.max(1);
    let root = BitMapBackend::new(path, (WIDTH, 2 * panel_height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(panel_height);
    panel(
        &top,
        rows,
        "Throughput: median req/s",
        |row| Some(row.rps.median),
        thousands,
    )?;
    panel(
        &bottom,
        rows,
        "Latency: median p99 (ms)",
        |row| row.p99_ms.map(|p| p.median),
        ms,
    )?;
    root.present()?;
    Ok(())
}

/// One series of a panel: its legend, colour and which rows belong to it.
struct Series {
    label: &'static str,
    colour: RGBColor,
    member: fn(&LoadRow) -> bool,
}

/// Baseline cases first, then HTTP, gRPC and any other transport.
const SERIES: [Series; 4] = [
    Series {
        label: "baseline",
        colour: BASELINE,
        member: LoadRow::is_baseline,
    },
    Series {
        label: "HTTP",
        colour: HTTP,
        member: |r| !r.is_baseline() && r.transport == "http",
    },
    Series {
        label: "gRPC",
        colour: GRPC,
        member: |r| !r.is_baseline() && r.transport == "grpc",
    },
    Series {
        label: "other",
        colour: OTHER,
        member: |r| !r.is_baseline() && r.transport != "http" && r.transport != "grpc",
    },
];

/// One panel: a bar per row (the first row on top) of `value`, labelled with `format`.
fn panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    rows: &[LoadRow],
    title: &str,
    value: impl Fn(&LoadRow) -> Option<f64>,
    format: fn(f64) -> String,
) -> Result<(), BoxError> {
    let n = i32::try_from(rows.len()).map_err(|_| "too many load cases to draw")?;
    let highest = rows.iter().filter_map(&value).fold(0.0, f64::max);
    // Room right of the longest bar for its value and the legend.
    let x_max = if highest > 0.0 { highest * 1.35 } else { 1.0 };
    // Segment i (from the bottom) holds row n - 1 - i, so the first row is on top.
    let name_of = |i: i32| {
        usize::try_from(n - 1 - i)
            .ok()
            .and_then(|r| rows.get(r))
            .map(|row| format!("{} ({})", row.case, row.transport))
            .unwrap_or_default()
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FAMILY, 22))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(330)
        .build_cartesian_2d(0.0..x_max, (0..n).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(TRANSPARENT)
        .y_labels(rows.len() + 1)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => name_of(*i),
            _ => String::new(),
        })
        .x_label_formatter(&|x| format(*x))
        .label_style((FAMILY, 14))
        .draw()?;

    for Series {
        label,
        colour,
        member,
    } in SERIES
    {
        let bars: Vec<(i32, f64)> = rows
            .iter()
            .zip((0..n).rev())
            .filter(|(row, _)| member(row))
            .filter_map(|(row, i)| Some((i, value(row)?)))
            .collect();
        if bars.is_empty() {
            continue;
        }
        chart
            .draw_series(bars.iter().map(|&(i, v)| {
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(i)),
                        (v, SegmentValue::Exact(i + 1)),
                    ],
                    colour.filled(),
                );
                bar.set_margin(5, 5, 0, 0);
                bar
            }))?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
        let text =
            TextStyle::from((FAMILY, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        chart.draw_series(bars.iter().map(|&(i, v)| {
            Text::new(
                format!(" {}", format(v)),
                (v, SegmentValue::CenterOf(i)),
                text.clone(),
            )
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
