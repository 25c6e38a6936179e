//! The report's plots, as SVG (plotters' SVG backend alone: no bitmap or font libraries to
//! build): the restart timeline, the forwarding-latency CDFs and the idle RSS per init.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use plotters::prelude::*;

use crate::performance::restarts::RestartRun;
use crate::report::{Measured, RunInfo};
use crate::utils::stats::{median_ci, Estimate};

const FONT: &str = "sans-serif";

/// Draws every plot that has data into `dir`; returns `(title, file name)` per plot.
pub fn draw(dir: &Path, info: &RunInfo, measured: &Measured) -> Result<Vec<(String, String)>> {
    let mut drawn = Vec::new();
    if !measured.restarts.is_empty() {
        let file = "restart-timeline.svg";
        restart_timeline(&dir.join(file), &measured.restarts)?;
        drawn.push(("Restart timeline: request latency over time, restarts marked".into(), file));
    }
    let latencies: Vec<(&str, &[f64])> = info
        .inits
        .iter()
        .filter_map(|i| {
            Some((i.label.as_str(), &measured.forwarding.get(&i.label)?.latencies_us[..]))
        })
        .collect();
    if !latencies.is_empty() {
        let file = "forwarding-cdf.svg";
        forwarding_cdf(&dir.join(file), &latencies)?;
        drawn.push(("Forwarding latency CDF per init".into(), file));
    }
    let memory: Vec<(&str, Estimate, Option<Estimate>)> = info
        .inits
        .iter()
        .filter_map(|i| {
            let l = measured.lifecycle.get(&i.label)?;
            Some((i.label.as_str(), median_ci(&l.rss_kib)?, median_ci(&l.anonymous_kib)))
        })
        .collect();
    if !memory.is_empty() {
        let file = "rss.svg";
        rss_bars(&dir.join(file), &memory)?;
        drawn.push(("Idle RSS of PID 1 per init".into(), file));
    }
    Ok(drawn.into_iter().map(|(title, file)| (title, file.to_string())).collect())
}

/// One panel per setup: each request's latency at the moment it was sent (failures as red
/// crosses at the top), a vertical line at every SIGHUP.
fn restart_timeline(path: &Path, runs: &[RestartRun]) -> Result<()> {
    let root = SVGBackend::new(path, (1000, 260 * runs.len() as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for (area, run) in root.split_evenly((runs.len(), 1)).iter().zip(runs) {
        let samples = &run.timeline.samples;
        let end = samples.iter().map(|s| (s.sent_at + s.latency).as_secs_f64()).fold(0.1, f64::max);
        let top = samples.iter().map(|s| ms(s.latency)).fold(1.0, f64::max) * 2.0;
        let bottom = samples.iter().map(|s| ms(s.latency)).fold(top, f64::min).max(0.01) / 2.0;
        let caption = format!(
            "{}: {} restarts, {} of {} requests failed",
            run.setup,
            run.restarts,
            run.timeline.failures().len(),
            run.timeline.total()
        );
        let mut chart = ChartBuilder::on(area)
            .caption(caption, (FONT, 15))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..end, (bottom..top).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("seconds since the load began")
            .y_desc("latency (ms, log)")
            .y_labels(6)
            .y_label_formatter(&|v| short(*v))
            .light_line_style(WHITE)
            .draw()?;
        let restart = RED.mix(0.4);
        chart
            .draw_series(run.marks.iter().map(|m| {
                let x = m.as_secs_f64();
                PathElement::new(vec![(x, bottom), (x, top)], restart)
            }))?
            .label("SIGHUP")
            .legend(move |(x, y)| PathElement::new(vec![(x, y - 6), (x, y + 6)], restart));
        let replied = samples.iter().filter(|s| s.outcome.is_ok());
        chart
            .draw_series(
                replied.map(|s| {
                    Circle::new((s.sent_at.as_secs_f64(), ms(s.latency)), 1, BLUE.filled())
                }),
            )?
            .label("reply")
            .legend(|(x, y)| Circle::new((x, y), 3, BLUE.filled()));
        let failed = samples.iter().filter(|s| s.outcome.is_err());
        chart
            .draw_series(failed.map(|s| Cross::new((s.sent_at.as_secs_f64(), top / 1.5), 4, RED)))?
            .label("failed")
            .legend(|(x, y)| Cross::new((x, y), 4, RED));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// The share of signals forwarded within each latency, one line per init, log latency axis.
fn forwarding_cdf(path: &Path, inits: &[(&str, &[f64])]) -> Result<()> {
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let all = inits.iter().flat_map(|(_, v)| v.iter().copied());
    let (low, high) = all.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (low, high) = ((low * 0.8).max(1.0), (high * 1.25).max(2.0));
    let mut chart = ChartBuilder::on(&root)
        .caption("Signal forwarding: host kill(2) of PID 1 → the child's receipt", (FONT, 18))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((low..high).log_scale(), 0f64..1f64)?;
    chart
        .configure_mesh()
        .x_desc("latency (µs, log)")
        .x_label_formatter(&|v| short(*v))
        .y_desc("share of signals")
        .light_line_style(WHITE)
        .draw()?;
    for (n, (label, latencies)) in inits.iter().enumerate() {
        let color = Palette99::pick(n).to_rgba();
        let mut sorted = latencies.to_vec();
        sorted.sort_by(f64::total_cmp);
        let count = sorted.len() as f64;
        let points = sorted.iter().enumerate().map(|(k, v)| (v.max(low), (k + 1) as f64 / count));
        chart.draw_series(LineSeries::new(points, color.stroke_width(2)))?.label(*label).legend(
            move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)),
        );
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// A bar per init: the median idle RSS with its interval as a whisker, the anonymous part of it
/// darker at the foot.
fn rss_bars(path: &Path, inits: &[(&str, Estimate, Option<Estimate>)]) -> Result<()> {
    let root = SVGBackend::new(path, (800, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = inits.iter().map(|(_, rss, _)| rss.high).fold(1.0, f64::max) * 1.15;
    let count = inits.len();
    let label_of = |x: &f64| {
        let slot = x - 0.5;
        let near = slot.round();
        if (slot - near).abs() < 1e-6 && near >= 0.0 {
            inits.get(near as usize).map_or(String::new(), |(label, _, _)| label.to_string())
        } else {
            String::new()
        }
    };
    let mut chart = ChartBuilder::on(&root)
        .caption("Idle RSS of PID 1 (median, 95 % interval; darker: anonymous)", (FONT, 18))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..count as f64, 0f64..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(2 * count + 1)
        .x_label_formatter(&label_of)
        .y_desc("KiB")
        .y_label_formatter(&|v| short(*v))
        .light_line_style(WHITE)
        .draw()?;
    for (n, (_, rss, anonymous)) in inits.iter().enumerate() {
        let x = n as f64;
        let color = Palette99::pick(n).to_rgba();
        chart.draw_series([Rectangle::new(
            [(x + 0.2, 0.0), (x + 0.8, rss.value)],
            color.mix(0.5).filled(),
        )])?;
        if let Some(anonymous) = anonymous {
            chart.draw_series([Rectangle::new(
                [(x + 0.2, 0.0), (x + 0.8, anonymous.value)],
                color.filled(),
            )])?;
        }
        let whisker = [(x + 0.5, rss.low), (x + 0.5, rss.high)];
        let caps =
            [(x + 0.4, rss.low), (x + 0.6, rss.low), (x + 0.4, rss.high), (x + 0.6, rss.high)];
        chart.draw_series([
            PathElement::new(whisker.to_vec(), BLACK),
            PathElement::new(caps[..2].to_vec(), BLACK),
            PathElement::new(caps[2..].to_vec(), BLACK),
        ])?;
    }
    root.present()?;
    Ok(())
}

/// An axis label without needless decimals: `100`, `2.5`, `0.05`.
fn short(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}
