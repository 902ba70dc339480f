//! PNG plots of comparisons (plotters, bitmap backend; text in DejaVu Sans,
//! embedded in the binary: `testbed/assets/DejaVuSans.ttf`, its licence
//! beside it).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use plotters::prelude::*;
use plotters::style::register_font;

/// plotters' drawing errors, as this crate's errors.
trait Plotted<T> {
    fn plotted(self) -> Result<T>;
}

impl<T, E: std::fmt::Display> Plotted<T> for std::result::Result<T, E> {
    fn plotted(self) -> Result<T> {
        self.map_err(|e| anyhow!("{e}"))
    }
}

/// The font every plot's text is set in.
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const SIZE: (u32, u32) = (1000, 600);

fn ensure_font() -> Result<()> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok =
        *REGISTERED.get_or_init(|| register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(anyhow!("the embedded font is not usable"))
    }
}

/// One line of a time-series plot.
pub struct Series {
    /// Legend.
    pub label: String,
    /// (seconds, value) points.
    pub points: Vec<(f64, f64)>,
    /// Where the run stopped, marked with a cross.
    pub stop: Option<(f64, f64)>,
}

/// Lines over time, e.g. pending MB per sync round for each policy.
pub fn plot_series(path: &Path, title: &str, y_label: &str, series: &[Series]) -> Result<()> {
    ensure_font()?;
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .collect();
    if all.is_empty() {
        bail!("{}: nothing to plot", path.display());
    }
    let x_max = all.iter().map(|p| p.0).fold(1.0, f64::max) * 1.05;
    let y_max = all.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).plotted()?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .plotted()?;
    chart
        .configure_mesh()
        .x_desc("time since the migration started, s")
        .y_desc(y_label)
        .draw()
        .plotted()?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))
            .plotted()?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        if let Some(stop) = s.stop {
            chart
                .draw_series(std::iter::once(Cross::new(stop, 8, color.stroke_width(3))))
                .plotted()?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .plotted()?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))
}

/// Panels stacked vertically, sharing the time axis: one line per panel,
/// each with its own y label (the profile of a guest).
pub fn plot_panels(path: &Path, title: &str, panels: &[(&str, Vec<(f64, f64)>)]) -> Result<()> {
    ensure_font()?;
    if panels.is_empty() || panels.iter().all(|p| p.1.is_empty()) {
        bail!("{}: nothing to plot", path.display());
    }
    let x_max = panels
        .iter()
        .flat_map(|p| p.1.iter().map(|q| q.0))
        .fold(1.0, f64::max);
    let root =
        BitMapBackend::new(path, (SIZE.0, 220 * panels.len() as u32 + 40)).into_drawing_area();
    root.fill(&WHITE).plotted()?;
    let root = root.titled(title, ("sans-serif", 24)).plotted()?;
    for (i, (area, (label, points))) in root
        .split_evenly((panels.len(), 1))
        .iter()
        .zip(panels)
        .enumerate()
    {
        let y_max = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(area)
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .plotted()?;
        chart
            .configure_mesh()
            .x_desc("time since the load started, s")
            .y_desc(*label)
            .draw()
            .plotted()?;
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .plotted()?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))
}

type TimeChart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A chart over time on `area`, its mesh drawn.
fn time_chart<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    x_max: f64,
    y_max: f64,
    y_desc: &str,
) -> Result<TimeChart<'a, 'b>> {
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .plotted()?;
    chart
        .configure_mesh()
        .x_desc("time since the migration started, s")
        .y_desc(y_desc)
        .draw()
        .plotted()?;
    Ok(chart)
}

/// The legend box of a chart.
fn draw_legend<'a, 'b: 'a>(chart: &mut TimeChart<'a, 'b>) -> Result<()> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .plotted()
}

/// Two panels over the time of a never-stop migration: pending MB after
/// each sync with the one-round-ahead forecast band and the stop points
/// (`marks`: label, (s, MB)), and the dirty rate with its forecast.
pub fn plot_forecast(
    path: &Path,
    title: &str,
    rows: &[crate::live::oracle::ForecastRow],
    marks: &[(String, (f64, f64))],
) -> Result<()> {
    ensure_font()?;
    if rows.is_empty() {
        bail!("{}: nothing to plot", path.display());
    }
    let x_max = rows
        .iter()
        .map(|r| r.t_s)
        .chain(marks.iter().map(|m| m.1 .0))
        .fold(1.0, f64::max)
        * 1.03;
    let root = BitMapBackend::new(path, (SIZE.0, 800)).into_drawing_area();
    root.fill(&WHITE).plotted()?;
    let root = root.titled(title, ("sans-serif", 22)).plotted()?;
    let (top, bottom) = root.split_vertically(440);

    // Pending, with the band and the stops.
    let y_max = rows
        .iter()
        .map(|r| r.pending_mib)
        .chain(rows.iter().filter_map(|r| r.forecast_mib.map(|f| f.2)))
        .chain(marks.iter().map(|m| m.1 .1))
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = time_chart(&top, x_max, y_max, "pending after sync, MiB")?;
    let band: Vec<(f64, f64, f64)> = rows
        .iter()
        .filter_map(|r| r.forecast_mib.map(|f| (r.t_s, f.1, f.2.min(y_max))))
        .collect();
    if band.len() >= 2 {
        let polygon: Vec<(f64, f64)> = band
            .iter()
            .map(|b| (b.0, b.1))
            .chain(band.iter().rev().map(|b| (b.0, b.2)))
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(
                polygon,
                BLUE.mix(0.15).filled(),
            )))
            .plotted()?
            .label("predictive: forecast band (one round ahead)")
            .legend(|(x, y)| {
                Rectangle::new([(x, y - 5), (x + 20, y + 5)], BLUE.mix(0.15).filled())
            });
    }
    chart
        .draw_series(LineSeries::new(
            rows.iter().map(|r| (r.t_s, r.pending_mib)),
            BLACK.stroke_width(2),
        ))
        .plotted()?
        .label("never-stop: pending")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    for (i, (label, point)) in marks.iter().enumerate() {
        let color = Palette99::pick(i + 1).to_rgba();
        chart
            .draw_series(std::iter::once(Cross::new(
                *point,
                9,
                color.stroke_width(3),
            )))
            .plotted()?
            .label(format!("{label}: stop at {:.1} s", point.0))
            .legend(move |(x, y)| Cross::new((x + 10, y), 6, color.stroke_width(3)));
    }
    draw_legend(&mut chart)?;

    // Dirty rate and its forecast.
    let d_max = rows
        .iter()
        .map(|r| r.dirty_mib_per_s)
        .chain(rows.iter().filter_map(|r| r.forecast_dirty_mib_per_s))
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = time_chart(&bottom, x_max, d_max, "dirty rate, MiB/s")?;
    chart
        .draw_series(LineSeries::new(
            rows.iter().map(|r| (r.t_s, r.dirty_mib_per_s)),
            BLACK.stroke_width(2),
        ))
        .plotted()?
        .label("dirtied in the round / its length")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(
            rows.iter()
                .filter_map(|r| r.forecast_dirty_mib_per_s.map(|f| (r.t_s, f))),
            BLUE.stroke_width(2),
        ))
        .plotted()?
        .label("predictive: forecast page-touch rate")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    draw_legend(&mut chart)?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))
}

/// One policy's stop on a Pareto plot.
pub struct ParetoPoint {
    /// Legend.
    pub label: String,
    /// Downtime, ms.
    pub downtime_ms: f64,
    /// Total migration time, s.
    pub total_s: f64,
}

/// The time/downtime trade-off of one workload: the stops of a migration
/// that never stopped that no other of its stops beats on both axes (a
/// line), each policy's stop (a point), and the oracle's (a triangle).
pub fn plot_pareto(
    path: &Path,
    title: &str,
    frontier: &[(f64, f64)],
    points: &[ParetoPoint],
    oracle: Option<&ParetoPoint>,
) -> Result<()> {
    ensure_font()?;
    let xs = frontier
        .iter()
        .map(|p| p.0)
        .chain(points.iter().map(|p| p.downtime_ms));
    let ys = frontier
        .iter()
        .map(|p| p.1)
        .chain(points.iter().map(|p| p.total_s));
    let x_max = xs.fold(1.0, f64::max) * 1.1;
    let y_max = ys.fold(1.0, f64::max) * 1.1;
    if frontier.is_empty() && points.is_empty() {
        bail!("{}: nothing to plot", path.display());
    }
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).plotted()?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .plotted()?;
    chart
        .configure_mesh()
        .x_desc("downtime, ms")
        .y_desc("total migration time, s")
        .draw()
        .plotted()?;
    if !frontier.is_empty() {
        chart
            .draw_series(LineSeries::new(
                frontier.iter().copied(),
                BLACK.mix(0.5).stroke_width(2),
            ))
            .plotted()?
            .label("every stop of a never-stop run (frontier)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
    }
    for (i, p) in points.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(std::iter::once(Circle::new(
                (p.downtime_ms, p.total_s),
                7,
                color.filled(),
            )))
            .plotted()?
            .label(p.label.clone())
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
    }
    if let Some(o) = oracle {
        chart
            .draw_series(std::iter::once(TriangleMarker::new(
                (o.downtime_ms, o.total_s),
                11,
                BLACK.filled(),
            )))
            .plotted()?
            .label(o.label.clone())
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, BLACK.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .plotted()?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))
}

/// The (downtime ms, total s) stops no other stop beats on both axes,
/// sorted by downtime.
pub fn pareto_frontier(stops: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut sorted: Vec<(f64, f64)> = stops
        .iter()
        .copied()
        .filter(|(d, t)| d.is_finite() && t.is_finite())
        .collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut frontier: Vec<(f64, f64)> = Vec::new();
    for p in sorted {
        if frontier.last().is_none_or(|last| p.1 < last.1) {
            frontier.push(p);
        }
    }
    frontier
}

/// What `kairos advise` shows: the sampled dirty rate and its forecast
/// with the interval (MiB/s over time, now at 0), and the expected cost of
/// a migration started at each moment ahead, wait included, with the
/// advised start marked.
pub struct AdvicePlot<'a> {
    /// (s before now, negative; MiB/s) of the samples.
    pub history: Vec<(f64, f64)>,
    /// (s from now, mean, lo, hi) MiB/s.
    pub forecast: Vec<(f64, f64, f64, f64)>,
    /// (start s from now, expected cost s) of each candidate.
    pub costs: Vec<(f64, f64)>,
    /// The advised start, s from now, and its cost, s.
    pub advised: (f64, f64),
    /// Title.
    pub title: &'a str,
}

/// Draw an [`AdvicePlot`].
pub fn plot_advice(path: &Path, plot: &AdvicePlot) -> Result<()> {
    ensure_font()?;
    if plot.history.is_empty() && plot.forecast.is_empty() {
        bail!("{}: nothing to plot", path.display());
    }
    let x_min = plot.history.first().map_or(0.0, |p| p.0).min(0.0);
    let x_max = plot
        .forecast
        .last()
        .map_or(1.0, |p| p.0)
        .max(plot.costs.last().map_or(1.0, |p| p.0));
    let root = BitMapBackend::new(path, (SIZE.0, 640)).into_drawing_area();
    root.fill(&WHITE).plotted()?;
    let root = root.titled(plot.title, ("sans-serif", 24)).plotted()?;
    let (top, bottom) = root.split_vertically(320);

    let rate_max = plot
        .history
        .iter()
        .map(|p| p.1)
        .chain(plot.forecast.iter().map(|p| p.3))
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&top)
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(x_min..x_max, 0.0..rate_max)
        .plotted()?;
    chart
        .configure_mesh()
        .x_desc("seconds from now")
        .y_desc("dirty rate, MiB/s")
        .draw()
        .plotted()?;
    let band = Palette99::pick(0).mix(0.2);
    chart
        .draw_series(std::iter::once(Polygon::new(
            plot.forecast
                .iter()
                .map(|p| (p.0, p.3))
                .chain(plot.forecast.iter().rev().map(|p| (p.0, p.2)))
                .collect::<Vec<_>>(),
            band.filled(),
        )))
        .plotted()?;
    let sampled = Palette99::pick(1).to_rgba();
    chart
        .draw_series(LineSeries::new(
            plot.history.iter().copied(),
            sampled.stroke_width(2),
        ))
        .plotted()?
        .label("sampled")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], sampled.stroke_width(2)));
    let forecast = Palette99::pick(0).to_rgba();
    chart
        .draw_series(LineSeries::new(
            plot.forecast.iter().map(|p| (p.0, p.1)),
            forecast.stroke_width(2),
        ))
        .plotted()?
        .label("forecast (band: interval)")
        .legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 20, y)], forecast.stroke_width(2))
        });
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(plot.advised.0, 0.0), (plot.advised.0, rate_max)],
            RED.stroke_width(2),
        )))
        .plotted()?
        .label("advised start")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .plotted()?;

    let cost_max = plot.costs.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(x_min..x_max, 0.0..cost_max)
        .plotted()?;
    chart
        .configure_mesh()
        .x_desc("migration started this many seconds from now")
        .y_desc("expected cost, s (wait included)")
        .draw()
        .plotted()?;
    let line = Palette99::pick(2).to_rgba();
    chart
        .draw_series(LineSeries::new(
            plot.costs.iter().copied(),
            line.stroke_width(2),
        ))
        .plotted()?;
    chart
        .draw_series(std::iter::once(Cross::new(
            plot.advised,
            9,
            RED.stroke_width(3),
        )))
        .plotted()?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod pareto_tests {
    use super::pareto_frontier;

    #[test]
    fn the_frontier_keeps_only_undominated_stops() {
        let stops = [
            (900.0, 3.0),
            (300.0, 30.0),
            (700.0, 5.0),
            (800.0, 6.0),
            (250.0, 40.0),
        ];
        assert_eq!(
            pareto_frontier(&stops),
            vec![(250.0, 40.0), (300.0, 30.0), (700.0, 5.0), (900.0, 3.0)]
        );
    }
}
