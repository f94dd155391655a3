//! The flags of `potc train` and what they configure: the quantization,
//! the training configuration, the weights to keep and the learning rate.

use super::Failure;
use crate::ckpt::Checkpoint;
use crate::interp::Plan;
use crate::quant::config::{BnFold, Scales};
use crate::quant::QuantConfig;
use crate::train::{Keep, Optimizer, Schedule, TrainConfig};

/// The largest learning rate accepted (of --lr, --min-lr, --threshold-lr).
const MAX_RATE: f32 = 10.0;

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
    /// Learning rate [default: 1e-3; 1e-4 when fine-tuning from --init; with
    /// --resume, the run's own]. A different rate given with --resume applies
    /// from the next epoch on, with a note.
    #[arg(long)]
    pub lr: Option<f32>,
    /// The quantizer thresholds' learning rate (TQT's `log2 t`) [default:
    /// --lr]; the schedule scales it with --lr. Thresholds take no weight decay.
    #[arg(long, value_name = "LR")]
    pub threshold_lr: Option<f32>,
    /// L2 weight decay, added to the gradient (as torch.optim.Adam/SGD).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adam)]
    pub optimizer: OptimizerKind,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    /// Learning-rate schedule: plateau (halve the rate after --patience epochs
    /// without a lower training loss, down to --min-lr, as the FCN paper),
    /// cosine (to --min-lr), or constant.
    #[arg(long, value_enum, default_value_t = ScheduleKind::Plateau)]
    pub schedule: ScheduleKind,
    /// Epochs without a lower training loss before plateau halves the rate.
    #[arg(long, default_value_t = 50)]
    pub patience: u32,
    /// The floor of the plateau and cosine schedules [default: --lr / 10].
    #[arg(long)]
    pub min_lr: Option<f32>,
    /// The weights the checkpoint ends with: those of the epoch with the
    /// lowest training loss (under --bn fold-sim, among the epochs after
    /// --freeze-bn, which train the deployed arithmetic), or the last
    /// epoch's. Test data never selects. The last epoch's weights are kept
    /// too (for --resume).
    #[arg(long, value_enum, default_value_t = KeepArg::BestLoss)]
    pub keep: KeepArg,
    /// Write the checkpoint every N epochs [default: every 30 seconds]; it is
    /// always written after the last epoch.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub save_every: Option<u32>,
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
    /// Batch norm under --quant: `fold-then-qat` folds it into the
    /// convolutions (with the --init weights) before QAT, which then trains
    /// exactly the deployed arithmetic; `fold-sim` keeps it and quantizes each
    /// conv's weights folded with the running statistics, correcting to batch
    /// statistics until --freeze-bn [default: fold-then-qat from a float
    /// --init, whose statistics are trained; fold-sim from fresh weights,
    /// whose statistics are not; a quantization-aware --init's or --resume's
    /// own].
    #[arg(long, value_enum)]
    pub bn: Option<BnMode>,
    /// With fold-sim: the epoch from which batch-norm statistics freeze and the
    /// folded layers compute exactly the deployed arithmetic (default: half
    /// of --epochs).
    #[arg(long, value_name = "EPOCH")]
    pub freeze_bn: Option<usize>,
    /// One weight exponent per output channel (the default): a requantization
    /// shift per channel costs hardware nothing, and one outlier channel (a
    /// nearly dead batch norm folds into weights hundreds of times larger)
    /// then cannot wreck the range of all the others.
    #[arg(long, conflicts_with = "per_tensor")]
    pub per_channel: bool,
    /// One weight exponent per layer instead of per output channel (a layer's
    /// `w_per_channel = true` still wins).
    #[arg(long)]
    pub per_tensor: bool,
    /// Power-of-two weights (0 or ±2^k times 2^e, 2..=5 bits) for every layer
    /// whose model text does not set `w_format`: each product is a shift.
    #[arg(long, conflicts_with = "apot_weights")]
    pub pot_weights: bool,
    /// Additive power-of-two weights (0, ±2^k or ±(2^k + 2^(k-1)) times 2^e,
    /// 2..=6 bits: 0 1 2 3 4 6 8 12 at 4 bits) for every layer whose model
    /// text does not set `w_format`: each product is two shifts and an add,
    /// with levels twice as dense as powers of two.
    #[arg(long)]
    pub apot_weights: bool,
    /// Calibrate activation thresholds by this percentile of the magnitudes
    /// seen on the training data (e.g. 99.99) instead of their maximum.
    #[arg(long, value_name = "P")]
    pub calibration_percentile: Option<f64>,
    /// Bits of the network input's quantizer (2..=16, signed) [default: the
    /// a_bits of --quant, widened until the training data's standard
    /// deviation spans 2^(a_bits-4) steps, as it does in z-normalized data].
    /// With per-layer
    /// `a_bits`, this sets e.g. "first and last layer at 8 bits".
    #[arg(long, value_name = "N")]
    pub input_bits: Option<usize>,
    /// Quantizer thresholds: `learned` (calibrated by the maximum, then
    /// trained as TQT) or `max` (calibrated, then fixed).
    #[arg(long, value_enum, default_value_t = ScalesArg::Learned)]
    pub scales: ScalesArg,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepArg {
    BestLoss,
    Last,
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
    pub(super) fn quant_config(&self) -> Result<Option<QuantConfig>, Failure> {
        let fail = |e: String| Failure(format!("error: {e}\n"));
        let Some(spec) = &self.quant else {
            return match self.input_bits {
                Some(_) => Err(fail("--input-bits quantizes the input; it needs --quant".into())),
                None => Ok(None),
            };
        };
        let mut q = super::parse_quant(spec)?;
        if let Some(bits) = self.input_bits {
            q.set_input_bits(bits).map_err(fail)?;
        }
        q.bn = match self.bn {
            Some(BnMode::FoldSim) => BnFold::FoldSim,
            Some(BnMode::FoldThenQat) => BnFold::FoldThenQat,
            None => q.bn,
        };
        q.per_channel = !self.per_tensor;
        q.pot_weights = self.pot_weights;
        q.apot_weights = self.apot_weights;
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

    /// The configuration; `lr` is the rate the run trains at (see [`base_lr`]).
    pub(super) fn config(&self, threads: usize, lr: f32) -> Result<TrainConfig, Failure> {
        // Rates beyond MAX_RATE and decay beyond 1 only make the weights
        // overflow to infinity; NaN compares false and is caught too.
        let rates =
            [("--lr", Some(lr)), ("--min-lr", self.min_lr), ("--threshold-lr", self.threshold_lr)];
        for (flag, v) in rates {
            if let Some(v) = v.filter(|&v| !(v > 0.0 && v <= MAX_RATE)) {
                return Err(Failure(format!(
                    "error: {flag} must lie in (0, {MAX_RATE}], not {v}\n"
                )));
            }
        }
        if !(0.0..=1.0).contains(&self.weight_decay) {
            return Err(Failure(format!(
                "error: --weight-decay must lie in [0, 1], not {}\n",
                self.weight_decay
            )));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(Failure(format!(
                "error: --momentum must lie in [0, 1), not {}\n",
                self.momentum
            )));
        }
        let min_lr = self.min_lr.unwrap_or(lr / 10.0);
        Ok(TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size as usize,
            lr,
            weight_decay: self.weight_decay,
            threshold_lr: self.threshold_lr,
            seed: self.seed,
            threads,
            optimizer: match self.optimizer {
                OptimizerKind::Adam => Optimizer::adam(),
                OptimizerKind::Sgd => Optimizer::Sgd { momentum: self.momentum },
            },
            schedule: match self.schedule {
                ScheduleKind::Constant => Schedule::Constant,
                ScheduleKind::Cosine => Schedule::Cosine { min_lr },
                ScheduleKind::Plateau => {
                    Schedule::Plateau { factor: 0.5, patience: self.patience, min_lr }
                }
            },
            freeze_bn: Some(self.freeze_bn.unwrap_or(self.epochs / 2)),
            keep: Keep::Last,
        })
    }

    /// Which weights to keep, once the plan is known: under simulated
    /// folding only epochs with frozen statistics compute what is deployed.
    pub(super) fn keep(&self, plan: &Plan, cfg: &TrainConfig) -> Keep {
        let folds = plan.steps.iter().any(|s| s.fold.is_some());
        match self.keep {
            KeepArg::Last => Keep::Last,
            KeepArg::BestLoss if folds => Keep::BestLoss { from: cfg.freeze_bn.unwrap_or(0) },
            KeepArg::BestLoss => Keep::BestLoss { from: 0 },
        }
    }
}

/// The rate to train at: `--lr`; else a resumed run's own; else 1e-4 to
/// fine-tune from `--init` (float or QAT: the weights are already good, and
/// 1e-3 shakes them, most of all under quantization) and 1e-3 from scratch.
pub(super) fn base_lr(o: &TrainOptions, resume: Option<&Checkpoint>) -> Result<f32, Failure> {
    let fresh = if o.init.is_some() { 1e-4 } else { 1e-3 };
    Ok(o.lr.or(saved_lr(resume, std::path::Path::new(&o.out))?).unwrap_or(fresh))
}

/// The base rate a resumed run was started with.
pub(super) fn saved_lr(
    resume: Option<&Checkpoint>,
    path: &std::path::Path,
) -> Result<Option<f32>, Failure> {
    let Some(ck) = resume else { return Ok(None) };
    let cfg: Option<serde_json::Value> =
        ck.json(crate::ckpt::KEY_CONFIG).map_err(|e| e.in_file(path))?;
    Ok(cfg.and_then(|c| c["lr"].as_f64()).map(|lr| lr as f32))
}
