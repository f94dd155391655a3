//! `potc train`: float training (QAT arrives with `--quant`, issue 4).

use super::diagnostics;
use super::model_data::{fit_to_data, pool};
use super::quantized::record;
use super::start::Start;
use super::{load_model, plot, Failure};
use crate::ckpt::Checkpoint;
use crate::data::{self, Dataset};
use crate::interp::Plan;
use crate::ir::Graph;
use crate::quant::config::{BnFold, Scales};
use crate::quant::QuantConfig;
use crate::train::checkpoint::{labels, to_checkpoint};
use crate::train::fit::median_samples_per_second;
use crate::train::{fit, Optimizer, Schedule, TrainConfig, TrainState};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    Adam,
    Sgd,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleKind {
    Constant,
    Cosine,
    Plateau,
}

/// Flags of `potc train` (see `potc train --help`).
#[derive(clap::Args, Debug, Clone)]
pub struct TrainOptions {
    /// The model text (`.pot`).
    pub model: String,
    /// Training data: `.ts` (UCR/UEA archive), `.tsv` (UCR 2018) or `.npz` (`x` [N,C,L], `y` [N]).
    #[arg(long, value_name = "DATA")]
    pub train: String,
    /// Test data, evaluated after every epoch; same formats.
    #[arg(long, value_name = "DATA")]
    pub test: String,
    /// The checkpoint to write (safetensors, written atomically).
    #[arg(short = 'o', long = "output", value_name = "CKPT")]
    pub out: String,
    /// Epochs to train in all (with --resume: the total, counting finished ones).
    #[arg(long, default_value_t = 100)]
    pub epochs: usize,
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,
    /// L2 weight decay, added to the gradient (as torch.optim.Adam/SGD).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adam)]
    pub optimizer: OptimizerKind,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    /// Learning-rate schedule: constant, cosine (to --min-lr), or plateau (halve the
    /// rate after --patience epochs without a lower training loss, as the FCN paper).
    #[arg(long, value_enum, default_value_t = ScheduleKind::Constant)]
    pub schedule: ScheduleKind,
    #[arg(long, default_value_t = 50)]
    pub patience: u32,
    #[arg(long, default_value_t = 1e-4)]
    pub min_lr: f32,
    /// Seed of initialisation, shuffling and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (0: one per core). The same seed and thread count give
    /// byte-identical checkpoints.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Start from the parameters of this checkpoint (not its optimizer state).
    #[arg(long, value_name = "CKPT")]
    pub init: Option<String>,
    /// Continue the run saved in the output checkpoint, if it exists.
    #[arg(long)]
    pub resume: bool,
    /// Print one JSON object on standard output (progress and warnings stay
    /// on standard error; the object lists the warnings too).
    #[arg(long)]
    pub json: bool,
    /// Also write the training curves as SVG beside the checkpoint (`CKPT.curves.svg`).
    #[arg(long)]
    pub plot: bool,
    /// Quantization-aware training: `w<bits>a<bits>` (e.g. w4a8) for the whole
    /// network, power-of-two scales; per-layer `w_bits`/`a_bits` in the model win.
    #[arg(long, value_name = "SPEC")]
    pub quant: Option<String>,
    /// Batch norm under --quant: `fold-sim` keeps it and quantizes each conv's
    /// weights folded with the running statistics, correcting to batch
    /// statistics until --freeze-bn; `fold-then-qat` folds it into the
    /// convolutions (with the --init weights) before QAT.
    #[arg(long, value_enum, default_value_t = BnMode::FoldSim)]
    pub bn: BnMode,
    /// With fold-sim: the epoch from which batch-norm statistics freeze and the
    /// folded layers compute exactly the deployed arithmetic (default: half
    /// of --epochs).
    #[arg(long, value_name = "EPOCH")]
    pub freeze_bn: Option<usize>,
    /// One weight exponent per output channel instead of per tensor.
    #[arg(long)]
    pub per_channel: bool,
    /// Power-of-two weights (0 or ±2^k times 2^e, 2..=5 bits) for every layer
    /// whose model text does not set `w_format`.
    #[arg(long)]
    pub pot_weights: bool,
    /// Calibrate activation thresholds by this percentile of the magnitudes
    /// seen on the training data (e.g. 99.99) instead of their maximum.
    #[arg(long, value_name = "P")]
    pub calibration_percentile: Option<f64>,
    /// Quantizer thresholds: `learned` (calibrated by the maximum, then
    /// trained as TQT) or `max` (calibrated, then fixed).
    #[arg(long, value_enum, default_value_t = ScalesArg::Learned)]
    pub scales: ScalesArg,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BnMode {
    FoldSim,
    FoldThenQat,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalesArg {
    Learned,
    Max,
}

impl TrainOptions {
    fn quant_config(&self) -> Result<Option<QuantConfig>, Failure> {
        let Some(spec) = &self.quant else { return Ok(None) };
        let mut q = QuantConfig::parse(spec).map_err(|e| Failure(format!("error: {e}\n")))?;
        q.bn = match self.bn {
            BnMode::FoldSim => BnFold::FoldSim,
            BnMode::FoldThenQat => BnFold::FoldThenQat,
        };
        q.per_channel = self.per_channel;
        q.pot_weights = self.pot_weights;
        q.percentile = self.calibration_percentile;
        if let Some(p) = q.percentile.filter(|p| !(*p > 0.0 && *p <= 100.0)) {
            return Err(Failure(format!(
                "error: --calibration-percentile must lie in (0, 100], not {p}\n"
            )));
        }
        q.scales = match self.scales {
            ScalesArg::Learned => Scales::Learned,
            ScalesArg::Max => Scales::Max,
        };
        Ok(Some(q))
    }

    fn config(&self, threads: usize) -> Result<TrainConfig, Failure> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Failure(format!(
                "error: --lr must be a positive number, not {}\n",
                self.lr
            )));
        }
        Ok(TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size as usize,
            lr: self.lr,
            weight_decay: self.weight_decay,
            seed: self.seed,
            threads,
            optimizer: match self.optimizer {
                OptimizerKind::Adam => Optimizer::adam(),
                OptimizerKind::Sgd => Optimizer::Sgd { momentum: self.momentum },
            },
            schedule: match self.schedule {
                ScheduleKind::Constant => Schedule::Constant,
                ScheduleKind::Cosine => Schedule::Cosine { min_lr: self.min_lr },
                ScheduleKind::Plateau => {
                    Schedule::Plateau { factor: 0.5, patience: self.patience, min_lr: self.min_lr }
                }
            },
            freeze_bn: Some(self.freeze_bn.unwrap_or(self.epochs / 2)),
        })
    }
}

pub fn train(o: &TrainOptions) -> Result<String, Failure> {
    let (_, model) = load_model(&o.model)?;
    let quant = o.quant_config()?;
    let train_set = data::load(Path::new(&o.train))?;
    let out = Path::new(&o.out);
    let resume_from = (o.resume && out.exists()).then(|| Checkpoint::load(out)).transpose()?;
    let init_from = o.init.as_ref().map(|p| Checkpoint::load(Path::new(p))).transpose()?;
    // Class indices follow the checkpoint we continue from, else the data file.
    let label_map = match resume_from.as_ref().or(init_from.as_ref()) {
        Some(ck) => labels(ck)?,
        None => vec![],
    };
    let train_set =
        if label_map.is_empty() { train_set } else { train_set.with_labels(&label_map)? };
    let test_set = data::load(Path::new(&o.test))?.with_labels(&train_set.labels)?;
    check_classes(&model, &train_set)?;
    let typed = fit_to_data(&model, &train_set)?;
    if test_set.length != train_set.length || test_set.channels != train_set.channels {
        return Err(Failure(format!(
            "{}: test series are [{}, {}], training series [{}, {}]\n",
            test_set.path, test_set.channels, test_set.length, train_set.channels, train_set.length
        )));
    }
    let threads = pool(o.threads)?;
    let cfg = o.config(threads.current_num_threads())?;
    let start =
        Start { resume: resume_from.as_ref(), init: init_from.as_ref(), quant: quant.as_ref() };
    let (plan, mut w, mut st) = threads.install(|| start.prepare(&typed, &cfg, &train_set, o))?;
    let mut warnings = vec![];
    if let Some(q) = quant.as_ref().filter(|_| diagnostics::calibrates(&start)) {
        let (ds, init) = (&train_set, init_from.as_ref());
        let found =
            threads.install(|| diagnostics::qat(&typed, q, &plan, &w, ds, cfg.threads, init));
        warnings.extend(diagnostics::report("after calibration: ", found));
    }
    if st.epoch >= cfg.epochs {
        eprintln!("note: {} already has {} epochs; nothing to train", o.out, st.epoch);
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
            if st.epoch == cfg.epochs || last_save.elapsed() > Duration::from_secs(30) {
                last_save = Instant::now();
                save(&model, &plan, w, st, &cfg, &train_set.labels, quant.as_ref(), out)?;
            }
            Ok::<(), crate::ckpt::CkptError>(())
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
    let last = st.history.last();
    let test_accuracy = match last {
        Some(e) => e.test_accuracy,
        None => {
            threads.install(|| crate::train::evaluate(&plan, &w, &test_set, cfg.threads)).accuracy
        }
    };
    let sps = median_samples_per_second(&st.history);
    let found = match quant.as_ref() {
        Some(q) => threads
            .install(|| diagnostics::qat(&typed, q, &plan, &w, &train_set, cfg.threads, None)),
        None => diagnostics::float(&typed, &plan, &w),
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
