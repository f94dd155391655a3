//! `potc train`: float training, or quantization-aware with `--quant`.

use super::diagnostics;
use super::model_data::{fit_to_data, pool};
use super::quantized::{record, KEY_QUANT};
use super::start::Start;
use super::train_options::{base_lr, saved_lr, TrainOptions};
use super::{load_float_model, plot, Failure};
use crate::ckpt::Checkpoint;
use crate::data::{self, Dataset};
use crate::interp::Plan;
use crate::ir::Graph;
use crate::quant::config::BnFold;
use crate::quant::QuantConfig;
use crate::train::checkpoint::{labels, to_checkpoint};
use crate::train::fit::median_samples_per_second;
use crate::train::{fit, TrainConfig, TrainState};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::time::{Duration, Instant};

pub fn train(o: &TrainOptions) -> Result<String, Failure> {
    let (_, model) = load_float_model(&o.model)?;
    let mut quant = o.quant_config()?;
    let out = Path::new(&o.out);
    check_output(out, &[("--train", &o.train), ("--test", &o.test)])?;
    let train_set = data::load(Path::new(&o.train))?;
    let resume_from = (o.resume && out.exists()).then(|| Checkpoint::load(out)).transpose()?;
    let init_from = o.init.as_ref().map(|p| Checkpoint::load(Path::new(p))).transpose()?;
    if let Some(q) = quant.as_mut().filter(|_| o.input_bits.is_none()) {
        default_input_bits(q, &train_set)?;
    }
    if let Some(q) = quant.as_mut().filter(|_| o.bn.is_none()) {
        q.bn = default_bn(resume_from.as_ref().or(init_from.as_ref()), init_from.is_some());
    }
    // Class indices follow the checkpoint we continue from, else the data file.
    let label_map = match (&resume_from, &init_from) {
        (Some(ck), _) => labels(ck).map_err(|e| e.in_file(out))?,
        (None, Some(ck)) => {
            labels(ck).map_err(|e| e.in_file(Path::new(o.init.as_deref().unwrap_or(""))))?
        }
        (None, None) => vec![],
    };
    let train_set =
        if label_map.is_empty() { train_set } else { train_set.with_labels(&label_map)? };
    let test_set = data::load(Path::new(&o.test))?.with_labels(&train_set.labels)?;
    check_classes(&model, &train_set)?;
    let typed = fit_to_data(&model, &train_set)?;
    // Before any work: the buffers of one training batch must fit.
    Plan::new(&typed)
        .and_then(|p| p.check_batch((o.batch_size as usize).min(train_set.n)))
        .map_err(|e| Failure(format!("{}: error: {e}\n", o.model)))?;
    if test_set.length != train_set.length || test_set.channels != train_set.channels {
        return Err(Failure(format!(
            "{}: test series are [{}, {}], training series [{}, {}]\n",
            test_set.path, test_set.channels, test_set.length, train_set.channels, train_set.length
        )));
    }
    let threads = pool(o.threads)?;
    let lr = base_lr(o, resume_from.as_ref())?;
    let mut cfg = o.config(threads.current_num_threads(), lr)?;
    let start =
        Start { resume: resume_from.as_ref(), init: init_from.as_ref(), quant: quant.as_ref() };
    let (plan, mut w, mut st) = threads.install(|| start.prepare(&typed, &cfg, &train_set, o))?;
    cfg.keep = o.keep(&plan, &cfg);
    announce(o, &cfg, &mut st, resume_from.as_ref())?;
    let mut warnings = vec![];
    if let Some(q) = quant.as_ref().filter(|_| diagnostics::calibrates(&start)) {
        let (ds, init) = (&train_set, init_from.as_ref());
        let found =
            threads.install(|| diagnostics::qat(&typed, q, &plan, &w, ds, cfg.threads, init));
        warnings.extend(diagnostics::report("after calibration: ", found));
    }
    if let Some(q) = quant.as_ref() {
        let found = crate::diagnose::offset_input(&train_set, q.input_bits(), q.a_bits);
        warnings.extend(diagnostics::report("", found));
    }

    let epochs_before = st.epoch;
    let bar = progress(cfg.epochs, st.epoch);
    let mut last_save = Instant::now();
    let started = Instant::now();
    threads.install(|| {
        fit(&plan, &mut w, &mut st, &train_set, &test_set, &cfg, |st, w| {
            let e = st.history.last().expect("an epoch just finished");
            let line = format!(
                "epoch {:>4}/{}  loss {:.4}  train {:.4}  test {:.4}  lr {:.2e}  {:.0} samples/s",
                e.epoch,
                cfg.epochs,
                e.loss,
                e.train_accuracy,
                e.test_accuracy,
                e.lr,
                e.samples_per_second
            );
            bar.set_position(st.epoch as u64);
            bar.set_message(format!("loss {:.4} test {:.4}", e.loss, e.test_accuracy));
            let every = (cfg.epochs / 20).max(1);
            if st.epoch % every == 0 || st.epoch == cfg.epochs {
                bar.suspend(|| eprintln!("{line}"));
            }
            let due = match o.save_every {
                Some(n) => st.epoch % n as usize == 0,
                None => last_save.elapsed() > Duration::from_secs(30),
            };
            if st.epoch == cfg.epochs || due {
                last_save = Instant::now();
                save(&model, &plan, w, st, &cfg, &train_set.labels, quant.as_ref(), out)?;
            }
            Ok::<(), Failure>(())
        })
    })?;
    bar.finish_and_clear();
    if st.epoch == epochs_before {
        save(&model, &plan, &w, &st, &cfg, &train_set.labels, quant.as_ref(), out)?;
    }
    let train_seconds = started.elapsed().as_secs_f64();
    if o.plot {
        let svg = format!("{}.curves.svg", o.out);
        plot::training_curves(&st.history, Path::new(&svg))?;
        eprintln!("wrote {svg}");
    }
    // The checkpoint holds the kept weights: report their epoch.
    let kept_epoch = st.kept.as_ref().map_or(st.epoch, |k| k.epoch);
    if kept_epoch != st.epoch {
        let k = st.kept.as_ref().expect("kept weights");
        eprintln!(
            "note: kept the weights of epoch {} (lowest training loss {:.4}); --keep last keeps the last epoch's",
            k.epoch, k.loss
        );
    }
    let last = kept_epoch.checked_sub(1).and_then(|i| st.history.get(i));
    // Of the weights saved (precise batch-norm statistics included).
    let result = st.result(&w);
    let test_accuracy =
        threads.install(|| crate::train::evaluate(&plan, result, &test_set, cfg.threads)).accuracy;
    let sps = median_samples_per_second(&st.history);
    let found = match quant.as_ref() {
        Some(q) => threads
            .install(|| diagnostics::qat(&typed, q, &plan, result, &train_set, cfg.threads, None)),
        None => diagnostics::float(&typed, &plan, result),
    };
    warnings.extend(diagnostics::report("after training: ", found));
    Ok(if o.json {
        serde_json::json!({
            "test_accuracy": test_accuracy,
            "train_accuracy": last.map(|e| e.train_accuracy),
            "loss": last.map(|e| e.loss),
            "train_seconds": train_seconds,
            "samples_per_second": sps,
            "epochs": st.epoch,
            "kept_epoch": kept_epoch,
            "lr": cfg.lr,
            "batch_size": cfg.batch_size,
            "threads": cfg.threads,
            "checkpoint": o.out,
            "warnings": warnings,
        })
        .to_string()
            + "\n"
    } else {
        format!(
            "test accuracy {test_accuracy:.4} after {} epochs ({train_seconds:.1} s, {sps:.0} samples/s); wrote {}\n",
            st.epoch, o.out
        )
    })
}

/// The input quantizer's width when `--input-bits` is not given: `a_bits`,
/// widened where the training data need it (`input_bits_for`), with a note.
/// The same data give the same width, so a resumed run repeats it.
fn default_input_bits(q: &mut QuantConfig, train_set: &Dataset) -> Result<(), Failure> {
    let bits = crate::diagnose::input_bits_for(train_set, q.a_bits);
    if bits != q.a_bits {
        eprintln!(
            "note: the input quantizer gets {bits} bits, not {}: {} varies over few of the {}-bit levels \
             its range needs (--input-bits sets the width)",
            q.a_bits, train_set.path, q.a_bits
        );
    }
    q.set_input_bits(bits).map_err(|e| Failure(format!("error: {e}\n")))
}

/// Batch norm's treatment when `--bn` is not given: that of the
/// quantization-aware run continued from (`from`, the run resumed or the
/// `--init`); folded before QAT when starting from float weights, whose
/// statistics are trained, so every step trains the deployed arithmetic;
/// simulated (`fold-sim`) from fresh weights, whose statistics must first
/// be learned.
fn default_bn(from: Option<&Checkpoint>, init: bool) -> BnFold {
    // An unreadable `quant` entry is reported, with its file, where the
    // checkpoint's graph is built.
    let saved = from.and_then(|ck| ck.json::<QuantConfig>(KEY_QUANT).ok().flatten());
    match saved {
        Some(q) => q.bn,
        None if init => BnFold::FoldThenQat,
        None => BnFold::FoldSim,
    }
}

/// Says where the run starts and at what rate; a resumed run given another
/// `--lr` takes it from the next epoch on.
fn announce(
    o: &TrainOptions,
    cfg: &TrainConfig,
    st: &mut TrainState,
    resume: Option<&Checkpoint>,
) -> Result<(), Failure> {
    if resume.is_some() {
        eprintln!("note: resuming {} after epoch {} of {}", o.out, st.epoch, cfg.epochs);
        let saved = saved_lr(resume, Path::new(&o.out))?;
        if o.lr.is_some() && saved.is_some_and(|s| s != cfg.lr) {
            eprintln!(
                "note: the learning rate changes from {:.2e} (this epoch's) to --lr {:.2e}",
                st.sched.lr, cfg.lr
            );
            st.sched.lr = cfg.lr;
        }
    } else if o.lr.is_none() && o.init.is_some() {
        eprintln!(
            "note: fine-tuning from {} at --lr {:.0e}",
            o.init.as_deref().unwrap_or(""),
            cfg.lr
        );
    }
    if st.epoch >= cfg.epochs {
        eprintln!("note: {} already has {} epochs; nothing to train", o.out, st.epoch);
    }
    Ok(())
}

/// The model's output width must be the number of classes.
fn check_classes(model: &crate::ir::Graph, ds: &Dataset) -> Result<(), Failure> {
    let out = model.output().map(|o| model.node(o).ty.clone());
    match out.as_ref().map(|t| t.shape.as_slice()) {
        Some([k]) if *k == ds.labels.len() => Ok(()),
        _ => Err(Failure(format!(
            "{}: the data has {} classes ({}), but model `{}` returns {}; a classifier returns f32[{}]\n",
            ds.path,
            ds.labels.len(),
            ds.labels.join(", "),
            model.name,
            out.map_or("nothing".into(), |t| t.to_string()),
            ds.labels.len()
        ))),
    }
}

fn progress(epochs: usize, done: usize) -> ProgressBar {
    let bar =
        ProgressBar::with_draw_target(Some(epochs as u64), indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} epochs  {msg}  (eta {eta})",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_position(done as u64);
    bar
}

/// Before any work: the checkpoint must not replace a data file, and its
/// directory must take a new file (else the error would come only after
/// the last epoch).
fn check_output(out: &Path, inputs: &[(&str, &str)]) -> Result<(), Failure> {
    let fail = |why: String| Err(Failure(format!("{}: error: {why}\n", out.display())));
    if out.is_dir() {
        return fail("is a directory; -o names the checkpoint file to write".into());
    }
    if let Ok(target) = out.canonicalize() {
        for (flag, path) in inputs {
            if Path::new(path).canonicalize().is_ok_and(|p| p == target) {
                return fail(format!("is the {flag} data; -o would overwrite it"));
            }
        }
    }
    if let Err(e) = crate::ckpt::check_writable(out) {
        return fail(format!("cannot write a file there: {e}"));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn save(
    model: &Graph,
    plan: &Plan,
    w: &crate::interp::Weights,
    st: &TrainState,
    cfg: &TrainConfig,
    labels: &[String],
    quant: Option<&QuantConfig>,
    out: &Path,
) -> Result<(), crate::ckpt::CkptError> {
    let mut ck = to_checkpoint(model, plan, w, st, cfg, labels);
    ck.set_json(crate::ckpt::KEY_INPUT_SHAPE, &[plan.input_dims.0, plan.input_dims.1]);
    if let Some(q) = quant {
        record(&mut ck, q, plan, w);
    }
    ck.save(out)
}
