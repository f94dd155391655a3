//! Training curves as SVG: loss, and train/test accuracy, per epoch.

use super::Failure;
use crate::train::EpochRecord;
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

    let mut loss = ChartBuilder::on(&left)
        .caption("training loss", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(1f64..epochs.max(2.0), 0f64..max_loss * 1.05)?;
    loss.configure_mesh().x_desc("epoch").draw()?;
    loss.draw_series(LineSeries::new(history.iter().map(|e| (e.epoch as f64, e.loss)), &RED))?;

    let mut acc = ChartBuilder::on(&right)
        .caption("accuracy", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(1f64..epochs.max(2.0), 0f64..1.0)?;
    acc.configure_mesh().x_desc("epoch").draw()?;
    acc.draw_series(LineSeries::new(
        history.iter().map(|e| (e.epoch as f64, e.train_accuracy)),
        &BLUE,
    ))?
    .label("train")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    acc.draw_series(LineSeries::new(
        history.iter().map(|e| (e.epoch as f64, e.test_accuracy)),
        &GREEN,
    ))?
    .label("test")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
    acc.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
    root.present()?;
    Ok(())
}
