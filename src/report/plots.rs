//! SVG charts (plotters): throughput against latency across the concurrency levels of one run,
//! and one metric's history over time against its baseline and regression gate.

use plotters::prelude::*;

const WIDTH: u32 = 720;
const HEIGHT: u32 = 420;
const FONT: &str = "sans-serif";

/// A point of the throughput/latency chart.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPoint {
    /// Latency (ms), x axis.
    pub latency_ms: f64,
    /// Throughput (tok/s), y axis.
    pub throughput: f64,
    /// Label, e.g. `c=64`.
    pub label: String,
}

/// A point of a history chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryPoint {
    /// Epoch milliseconds.
    pub time_ms: i64,
    /// Value.
    pub value: f64,
    /// Whether that run was flagged as a regression.
    pub regression: bool,
}

fn padded(min: f64, max: f64) -> (f64, f64) {
    if !(min.is_finite() && max.is_finite()) {
        return (0.0, 1.0);
    }
    if (max - min).abs() < f64::EPSILON * max.abs().max(1.0) {
        let pad = (max.abs() * 0.1).max(1.0);
        return (min - pad, max + pad);
    }
    let pad = (max - min) * 0.08;
    (min - pad, max + pad)
}

/// A chart could not be drawn (plotters' message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plot: {0}")]
pub struct PlotError(pub String);

fn err(e: impl std::fmt::Display) -> PlotError {
    PlotError(e.to_string())
}

/// Throughput (y) against latency (x), one labelled point per concurrency, joined in order.
pub fn throughput_vs_latency(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    points: &[LoadPoint],
) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let xs = points.iter().map(|p| p.latency_ms);
        let ys = points.iter().map(|p| p.throughput);
        let (x0, x1) = padded(
            xs.clone().fold(f64::INFINITY, f64::min),
            xs.fold(f64::NEG_INFINITY, f64::max),
        );
        let (y0, y1) = padded(
            ys.clone().fold(f64::INFINITY, f64::min),
            ys.fold(f64::NEG_INFINITY, f64::max),
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0.max(0.0)..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        let mut sorted = points.to_vec();
        sorted.sort_by(|a, b| a.latency_ms.total_cmp(&b.latency_ms));
        chart
            .draw_series(LineSeries::new(
                sorted.iter().map(|p| (p.latency_ms, p.throughput)),
                BLUE.stroke_width(2),
            ))
            .map_err(err)?;
        chart
            .draw_series(points.iter().map(|p| {
                EmptyElement::at((p.latency_ms, p.throughput))
                    + Circle::new((0, 0), 4, BLUE.filled())
                    + Text::new(p.label.clone(), (6, -14), (FONT, 12))
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Least padding each side of a time axis: one run (or runs minutes apart) still gets a
/// readable hour-scale axis, never a ±years one.
const MIN_TIME_PAD_MS: f64 = 30.0 * 60.0 * 1000.0;

/// The x range of a history chart: the runs' span plus 8 % (at least half an hour) each side.
pub fn time_range(min_ms: f64, max_ms: f64) -> (f64, f64) {
    if !(min_ms.is_finite() && max_ms.is_finite()) {
        return (0.0, 1.0);
    }
    let pad = ((max_ms - min_ms) * 0.08).max(MIN_TIME_PAD_MS);
    (min_ms - pad, max_ms + pad)
}

/// A time-axis label, with the year: the date alone when the axis spans days, else date and
/// time.
pub fn date_label(ms: f64, span_ms: f64) -> String {
    let format = if span_ms > 2.0 * 86_400_000.0 {
        "%Y-%m-%d"
    } else {
        "%Y-%m-%d %H:%M"
    };
    jiff::Timestamp::from_millisecond(ms as i64)
        .map(|t| t.strftime(format).to_string())
        .unwrap_or_default()
}

/// A metric over time, with a horizontal baseline and the gate line (baseline × (1 ∓ t)).
pub fn metric_history(
    title: &str,
    y_desc: &str,
    points: &[HistoryPoint],
    baseline: Option<f64>,
    gate: Option<f64>,
) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let ts = points.iter().map(|p| p.time_ms as f64);
        let (x0, x1) = time_range(
            ts.clone().fold(f64::INFINITY, f64::min),
            ts.fold(f64::NEG_INFINITY, f64::max),
        );
        let span = x1 - x0;
        let ys = points.iter().map(|p| p.value).chain(baseline).chain(gate);
        let (y0, y1) = padded(
            ys.clone().fold(f64::INFINITY, f64::min),
            ys.fold(f64::NEG_INFINITY, f64::max),
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(4)
            .x_label_formatter(&|x| date_label(*x, span))
            .x_desc("time (UTC)")
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.time_ms as f64, p.value)),
                BLUE.stroke_width(2),
            ))
            .map_err(err)?
            .label("value")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE.stroke_width(2)));
        chart
            .draw_series(points.iter().map(|p| {
                let color = if p.regression { RED } else { BLUE };
                Circle::new((p.time_ms as f64, p.value), 4, color.filled())
            }))
            .map_err(err)?;
        if let Some(b) = baseline {
            chart
                .draw_series(LineSeries::new(
                    vec![(x0, b), (x1, b)],
                    GREEN.stroke_width(2),
                ))
                .map_err(err)?
                .label("baseline")
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], GREEN.stroke_width(2))
                });
        }
        if let Some(g) = gate {
            chart
                .draw_series(LineSeries::new(vec![(x0, g), (x1, g)], RED.stroke_width(1)))
                .map_err(err)?
                .label("regression gate")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED.stroke_width(1)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font((FONT, 12))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_run_gets_an_hour_scale_axis_with_the_year() {
        let t = 1_746_100_800_000.0; // 2025-05-01 12:00 UTC
        let (a, b) = time_range(t, t);
        assert_eq!(b - a, 2.0 * MIN_TIME_PAD_MS);
        assert_eq!(date_label(t, b - a), "2025-05-01 12:00");
        assert_eq!(date_label(t, 10.0 * 86_400_000.0), "2025-05-01");
        let (a, b) = time_range(t, t + 30.0 * 86_400_000.0);
        assert!(b - a < 35.0 * 86_400_000.0, "8 % each side");
    }
}
