//! Training curves as SVG: loss, and train/test accuracy, per epoch.

use super::Failure;
use crate::train::EpochRecord;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

pub fn training_curves(history: &[EpochRecord], path: &Path) -> Result<(), Failure> {
    draw(history, path)
        .map_err(|e| Failure(format!("{}: cannot draw the curves: {e}\n", path.display())))
}

fn draw(history: &[EpochRecord], path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(450);
    let epochs = history.len().max(1) as f64;
    let max_loss = history.iter().map(|e| e.loss).fold(1e-6, f64::max);

    let epoch = |e: &EpochRecord| e.epoch as f64;
    let mut loss = chart(&left, "training loss", epochs, max_loss * 1.05)?;
    loss.draw_series(LineSeries::new(history.iter().map(|e| (epoch(e), e.loss)), &RED))?;
    let mut acc = chart(&right, "accuracy", epochs, 1.0)?;
    for (label, color, value) in [
        ("train", BLUE, (|e: &EpochRecord| e.train_accuracy) as fn(&EpochRecord) -> f64),
        ("test", GREEN, |e: &EpochRecord| e.test_accuracy),
    ] {
        acc.draw_series(LineSeries::new(history.iter().map(|e| (epoch(e), value(e))), &color))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    acc.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
    root.present()?;
    Ok(())
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Axes over the epochs and `0..y_max`, with a caption and a mesh.
fn chart<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
    epochs: f64,
    y_max: f64,
) -> Result<Chart<'a, 'b>, Box<dyn std::error::Error>> {
    let mut c = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(1f64..epochs.max(2.0), 0f64..y_max)?;
    c.configure_mesh().x_desc("epoch").draw()?;
    Ok(c)
}
