//! Training state to and from checkpoints: parameters under their IR names
//! (`c1.w`), optimizer moments under `opt.m.<name>` / `opt.v.<name>`, and as
//! metadata the label mapping, the configuration, the history and the resume
//! state. When a run keeps its best weights, those are the parameters (what
//! `eval`, `lower` and `--init` read) and the last epoch's weights, which
//! `--resume` continues from, are saved as `last.<name>`.

use super::fit::{EpochRecord, Keep, Kept, TrainConfig, TrainState};
use super::optim::OptState;
use super::schedule::ScheduleState;
use crate::ckpt::{Checkpoint, CkptError, KEY_CONFIG, KEY_HISTORY, KEY_LABELS, KEY_STATE};
use crate::interp::{Plan, Weights};
use crate::ir::Graph;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ResumeState {
    epoch: usize,
    step: u64,
    schedule: ScheduleState,
    /// Epoch (1-based) and training loss of the kept weights.
    #[serde(default)]
    kept: Option<(usize, f64)>,
}

/// Prefix of the last epoch's weights when the parameters are the kept ones.
const LAST: &str = "last.";

/// Everything a later `--resume`, `eval` or `lower` needs.
pub fn to_checkpoint(
    g: &Graph,
    plan: &Plan,
    w: &Weights,
    st: &TrainState,
    cfg: &TrainConfig,
    labels: &[String],
) -> Checkpoint {
    let mut ck = Checkpoint::default();
    ck.set_model(g);
    for (p, v) in plan.params.iter().zip(st.result(w)) {
        ck.insert_f32(p.name.clone(), p.shape.clone(), v.clone());
    }
    if matches!(cfg.keep, Keep::BestLoss { .. }) {
        for (p, v) in plan.params.iter().zip(w) {
            ck.insert_f32(format!("{LAST}{}", p.name), p.shape.clone(), v.clone());
        }
    }
    for (p, (m, v)) in plan.params.iter().zip(st.opt.m.iter().zip(&st.opt.v)) {
        if !m.is_empty() {
            ck.insert_f32(format!("opt.m.{}", p.name), p.shape.clone(), m.clone());
        }
        if !v.is_empty() {
            ck.insert_f32(format!("opt.v.{}", p.name), p.shape.clone(), v.clone());
        }
    }
    ck.set_json(KEY_LABELS, labels);
    ck.set_json(KEY_CONFIG, cfg);
    ck.set_json(KEY_HISTORY, &st.history);
    let kept = st.kept.as_ref().map(|k| (k.epoch, k.loss));
    let state = ResumeState { epoch: st.epoch, step: st.opt.step, schedule: st.sched, kept };
    ck.set_json(KEY_STATE, &state);
    ck
}

/// The parameters of `plan` from a checkpoint already checked against the model.
pub fn weights(plan: &Plan, ck: &Checkpoint) -> Weights {
    plan.params
        .iter()
        .map(|p| {
            ck.f32(&p.name).map(|(_, v)| v.to_vec()).expect("check_against found every parameter")
        })
        .collect()
}

/// The weights a resumed run continues from: the last epoch's, which are
/// the parameters themselves unless the run keeps its best weights.
pub fn resume_weights(plan: &Plan, ck: &Checkpoint) -> Weights {
    let main = weights(plan, ck);
    plan.params
        .iter()
        .zip(main)
        .map(|(p, v)| {
            let last =
                ck.f32(&format!("{LAST}{}", p.name)).filter(|(s, _)| *s == p.shape.as_slice());
            last.map_or(v, |(_, l)| l.to_vec())
        })
        .collect()
}

/// The label mapping stored in a checkpoint.
pub fn labels(ck: &Checkpoint) -> Result<Vec<String>, CkptError> {
    Ok(ck.json::<Vec<String>>(KEY_LABELS)?.unwrap_or_default())
}

/// The training state for `--resume`, with the moments of `fresh`'s shape.
pub fn train_state(
    plan: &Plan,
    ck: &Checkpoint,
    fresh: TrainState,
) -> Result<TrainState, CkptError> {
    let Some(rs) = ck.json::<ResumeState>(KEY_STATE)? else { return Ok(fresh) };
    let history: Vec<EpochRecord> = ck.json(KEY_HISTORY)?.unwrap_or_default();
    let moments = |kind: &str, like: &Weights| -> Weights {
        plan.params
            .iter()
            .zip(like)
            .map(|(p, z)| {
                if z.is_empty() {
                    return vec![];
                }
                let found = ck
                    .f32(&format!("opt.{kind}.{}", p.name))
                    .filter(|(s, _)| *s == p.shape.as_slice());
                found.map_or_else(|| z.clone(), |(_, v)| v.to_vec())
            })
            .collect()
    };
    let opt =
        OptState { step: rs.step, m: moments("m", &fresh.opt.m), v: moments("v", &fresh.opt.v) };
    let kept = rs.kept.map(|(epoch, loss)| Kept { epoch, loss, weights: weights(plan, ck) });
    Ok(TrainState { epoch: rs.epoch, opt, sched: rs.schedule, history, kept })
}
