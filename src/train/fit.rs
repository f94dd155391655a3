//! The training loop: seeded shuffling, mini-batches through the autodiff
//! interpreter, the optimizer, the schedule, and an evaluation per epoch.
//! Everything a run depends on is in `TrainState`, so a run resumed from a
//! checkpoint continues exactly as the uninterrupted one would.

use super::optim::{self, OptState, Optimizer};
use super::schedule::{Schedule, ScheduleState};
use crate::data::{batch, Dataset};
use crate::interp::kernels::loss::{argmax, softmax_cross_entropy};
use crate::interp::{backward, forward, Mode, Plan, Weights};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::time::Instant;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
    pub weight_decay: f32,
    /// The quantizer thresholds' own base rate (`None`: `lr`); the schedule
    /// scales it like `lr`.
    #[serde(default)]
    pub threshold_lr: Option<f32>,
    pub seed: u64,
    #[serde(skip)]
    pub threads: usize,
    #[serde(skip, default = "Optimizer::adam")]
    pub optimizer: Optimizer,
    pub schedule: Schedule,
    /// Under simulated batch-norm folding: the epoch from which statistics
    /// are frozen and the folded layers compute exactly what is deployed.
    pub freeze_bn: Option<usize>,
    /// Which weights the run ends with.
    #[serde(default)]
    pub keep: Keep,
}

/// Which weights a run keeps. The last epoch's weights land wherever the
/// loss happens to swing; the published FCN recipe (Wang et al. 2017) keeps
/// those of the lowest training loss instead. Test data never selects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Keep {
    /// The weights after the last epoch.
    #[default]
    Last,
    /// The weights after the epoch with the lowest mean training loss,
    /// among the epochs counted from `from` (0-based; under simulated
    /// batch-norm folding only epochs with frozen statistics train the
    /// deployed arithmetic).
    BestLoss { from: usize },
}

impl TrainConfig {
    /// The step sizes when the schedule has the weights at `lr`.
    pub fn rates(&self, lr: f32) -> optim::Rates {
        let threshold_lr = self.threshold_lr.map_or(lr, |t| t * lr / self.lr);
        optim::Rates { lr, threshold_lr, weight_decay: self.weight_decay }
    }
}

/// The weights a `Keep::BestLoss` run holds on to, and their epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    /// 1-based, as in the history.
    pub epoch: usize,
    pub loss: f64,
    pub weights: Weights,
}

/// One finished epoch, as the history in a checkpoint records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub loss: f64,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    pub lr: f32,
    /// Wall time and throughput: not saved, so that the same seed and thread
    /// count give byte-identical checkpoints.
    #[serde(skip)]
    pub seconds: f64,
    #[serde(skip)]
    pub samples_per_second: f64,
}

/// Everything that changes during training besides the weights.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: usize,
    pub opt: OptState,
    pub sched: ScheduleState,
    pub history: Vec<EpochRecord>,
    /// Under `Keep::BestLoss`, the best weights so far.
    pub kept: Option<Kept>,
}

impl TrainState {
    pub fn new(plan: &Plan, cfg: &TrainConfig) -> Self {
        TrainState {
            epoch: 0,
            opt: OptState::new(&plan.params, cfg.optimizer),
            sched: ScheduleState::new(cfg.lr),
            history: vec![],
            kept: None,
        }
    }

    /// The weights the run ends with (so far): the kept ones, else `w`.
    pub fn result<'a>(&'a self, w: &'a Weights) -> &'a Weights {
        self.kept.as_ref().map_or(w, |k| &k.weights)
    }

    /// Holds on to `w` if the epoch just finished (0-based `epoch`, mean
    /// training loss `loss`) beats the kept one.
    fn consider(&mut self, keep: Keep, epoch: usize, loss: f64, w: &Weights) {
        let Keep::BestLoss { from } = keep else { return };
        let better = self.kept.as_ref().is_none_or(|k| loss < k.loss);
        if epoch >= from && loss.is_finite() && better {
            self.kept = Some(Kept { epoch: epoch + 1, loss, weights: w.clone() });
        }
    }
}

/// Accuracy and the output rows (sample-major, `[N, K]`) of a data set.
pub struct Evaluation {
    pub accuracy: f64,
    pub logits: Vec<f32>,
    pub classes: usize,
}

/// Runs the model in inference mode over a data set, in batches.
pub fn evaluate(plan: &Plan, w: &Weights, ds: &Dataset, threads: usize) -> Evaluation {
    let k = plan.output_dims.0;
    let mut w = w.clone();
    let mut logits = vec![0.0f32; ds.n * k];
    let mut correct = 0;
    let all: Vec<usize> = (0..ds.n).collect();
    for chunk in all.chunks(plan.batch_within(64)) {
        let tape = forward(plan, &mut w, batch(ds, chunk), chunk.len(), Mode::Eval, threads);
        let out = tape.output(plan);
        for (bi, &i) in chunk.iter().enumerate() {
            let row: Vec<f32> = (0..k).map(|c| out[c * chunk.len() + bi]).collect();
            correct += (argmax(&row) == ds.y[i]) as usize;
            logits[i * k..][..k].copy_from_slice(&row);
        }
    }
    Evaluation { accuracy: correct as f64 / ds.n.max(1) as f64, logits, classes: k }
}

/// Training stopped because the loss or a weight stopped being a finite
/// number (a rate or weight decay too large for the network).
#[derive(Debug, Clone, PartialEq)]
pub struct Diverged {
    /// The epoch (1-based) in which it happened.
    pub epoch: usize,
    /// What became non-finite: `the loss` or a parameter's name.
    pub what: String,
    pub lr: f32,
}

impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "training diverged in epoch {}: {} is no longer a finite number (learning rate {:e}); \
             the weights of that epoch are not saved; train with a lower --lr or --weight-decay",
            self.epoch, self.what, self.lr
        )
    }
}

/// The first trainable parameter holding a NaN or an infinity.
fn non_finite_param(plan: &Plan, w: &Weights) -> Option<String> {
    plan.params
        .iter()
        .zip(w)
        .find(|(p, v)| p.trainable && v.iter().any(|x| !x.is_finite()))
        .map(|(p, _)| format!("parameter `{}`", p.name))
}

/// Trains from `st.epoch` to `cfg.epochs`, calling `on_epoch` after each one
/// (to save a checkpoint or print a line); an error from it stops training,
/// and so does a loss or weight that is no longer finite ([`Diverged`]),
/// before `on_epoch` could save it.
pub fn fit<E: From<Diverged>>(
    plan: &Plan,
    w: &mut Weights,
    st: &mut TrainState,
    train: &Dataset,
    test: &Dataset,
    cfg: &TrainConfig,
    mut on_epoch: impl FnMut(&TrainState, &Weights) -> Result<(), E>,
) -> Result<(), E> {
    let k = plan.output_dims.0;
    while st.epoch < cfg.epochs {
        let start = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(
            cfg.seed ^ (st.epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        let mut order: Vec<usize> = (0..train.n).collect();
        order.shuffle(&mut rng);
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        for idx in order.chunks(cfg.batch_size) {
            let labels: Vec<usize> = idx.iter().map(|&i| train.y[i]).collect();
            let tape = forward(
                plan,
                w,
                batch(train, idx),
                idx.len(),
                Mode::Train {
                    rng: &mut rng,
                    bn_frozen: st.epoch >= cfg.freeze_bn.unwrap_or(usize::MAX),
                    bn_momentum: None,
                },
                cfg.threads,
            );
            let (loss, dz, ok) = softmax_cross_entropy(tape.output(plan), k, &labels);
            if !loss.is_finite() {
                let what = "the loss".to_string();
                return Err(Diverged { epoch: st.epoch + 1, what, lr: st.sched.lr }.into());
            }
            let grads = backward(plan, w, &tape, dz, cfg.threads);
            optim::step(
                cfg.optimizer,
                &mut st.opt,
                &plan.params,
                w,
                &grads,
                cfg.rates(st.sched.lr),
            );
            loss_sum += loss * idx.len() as f64;
            correct += ok;
        }
        if let Some(what) = non_finite_param(plan, w) {
            return Err(Diverged { epoch: st.epoch + 1, what, lr: st.sched.lr }.into());
        }
        let seconds = start.elapsed().as_secs_f64();
        let loss = loss_sum / train.n.max(1) as f64;
        let test_accuracy = evaluate(plan, w, test, cfg.threads).accuracy;
        st.history.push(EpochRecord {
            epoch: st.epoch + 1,
            loss,
            train_accuracy: correct as f64 / train.n.max(1) as f64,
            test_accuracy,
            lr: st.sched.lr,
            seconds,
            samples_per_second: train.n as f64 / seconds.max(1e-9),
        });
        cfg.schedule.next(&mut st.sched, cfg.lr, st.epoch, cfg.epochs, loss);
        st.consider(cfg.keep, st.epoch, loss, w);
        st.epoch += 1;
        if st.epoch == cfg.epochs && has_plain_bn(plan) {
            let result = match st.kept.as_mut() {
                Some(k) => &mut k.weights,
                None => &mut *w,
            };
            precise_bn(plan, result, train, cfg.batch_size, cfg.threads);
        }
        on_epoch(st, w)?;
    }
    Ok(())
}

/// Precise batch-norm statistics (Wu & Johnson, "Rethinking 'Batch' in
/// BatchNorm", 2021): replaces every batch norm's running mean and variance
/// by their average over the training set, batch by batch as training
/// normalizes (the same batch size), for the weights `w` as they are. The
/// running averages that training keeps lag behind weights that still move
/// and weigh a small last batch like a full one; on a small data set that
/// makes inference swing from epoch to epoch. Not for plans that fold batch
/// norm into a quantized conv (`fold-sim`), whose folded weights read the
/// statistics while they are being averaged.
pub fn precise_bn(plan: &Plan, w: &mut Weights, ds: &Dataset, batch_size: usize, threads: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let all: Vec<usize> = (0..ds.n).collect();
    let mut seen = 0usize;
    for idx in all.chunks(batch_size.max(1)) {
        // Each batch's weight in the average is its share of the samples so far.
        seen += idx.len();
        let momentum = idx.len() as f64 / seen as f64;
        let mode = Mode::Train { rng: &mut rng, bn_frozen: false, bn_momentum: Some(momentum) };
        forward(plan, w, batch(ds, idx), idx.len(), mode, threads);
    }
}

/// Whether `precise_bn` applies: the plan has batch norms, none folded.
pub fn has_plain_bn(plan: &Plan) -> bool {
    let bn = plan.steps.iter().any(|s| matches!(s.op, crate::ir::op::Op::BatchNorm(_)));
    bn && plan.steps.iter().all(|s| s.fold.is_none())
}

/// Training throughput as the contract measures it: the median samples/s
/// over the epochs after the first (all epochs if there is only one).
pub fn median_samples_per_second(history: &[EpochRecord]) -> f64 {
    // Epochs restored from a checkpoint carry no timing.
    let timed: Vec<f64> =
        history.iter().map(|e| e.samples_per_second).filter(|&s| s > 0.0).collect();
    let mut v: Vec<f64> = timed.iter().skip(usize::from(timed.len() > 1)).copied().collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
