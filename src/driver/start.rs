//! Where a training run starts: a run to resume, parameters to start from
//! (float or quantization-aware), and the quantization to train under; the
//! plan to train and its starting weights and state.

use super::quantized::{graph_of, quantize_graph, store_from, weights_from};
use super::train_options::TrainOptions;
use super::Failure;
use crate::ckpt::Checkpoint;
use crate::data::Dataset;
use crate::interp::Plan;
use crate::ir::Graph;
use crate::quant::config::{BnFold, Scales};
use crate::quant::{QuantConfig, WeightFormat};
use crate::train::calibrate::calibrate;
use crate::train::checkpoint::{resume_weights, train_state, weights};
use crate::train::{init_weights, TrainConfig, TrainState};
use std::path::Path;

/// Where training starts: a run to resume, parameters to start from, and the
/// quantization to train under.
pub struct Start<'a> {
    pub resume: Option<&'a Checkpoint>,
    pub init: Option<&'a Checkpoint>,
    pub quant: Option<&'a QuantConfig>,
}

impl Start<'_> {
    /// The plan to train, its starting weights and state.
    pub fn prepare(
        &self,
        typed: &Graph,
        cfg: &TrainConfig,
        train_set: &Dataset,
        o: &TrainOptions,
    ) -> Result<(Plan, crate::interp::Weights, TrainState), Failure> {
        let plan_of =
            |g: &Graph| Plan::new(g).map_err(|e| Failure(format!("{}: error: {e}\n", o.model)));
        if let Some(ck) = self.resume {
            let (g, saved_quant) = graph_of(ck, typed, Path::new(&o.out))?;
            same_quant(saved_quant.as_ref(), self.quant, &o.out)?;
            ck.check_against(&g).map_err(|e| e.in_file(Path::new(&o.out)))?;
            let plan = fixed_scales(plan_of(&g)?, self.quant);
            let fresh = TrainState::new(&plan, cfg);
            let st = train_state(&plan, ck, fresh).map_err(|e| e.in_file(Path::new(&o.out)))?;
            return Ok((plan.clone(), resume_weights(&plan, ck), st));
        }
        let init_path = Path::new(o.init.as_deref().unwrap_or(""));
        let (float_graph, init_quant) = match self.init {
            Some(ck) => graph_of(ck, typed, init_path)?,
            None => (typed.clone(), None),
        };
        if let Some(ck) = self.init {
            ck.check_against(&float_graph).map_err(|e| e.in_file(init_path))?;
        }
        let float_plan = plan_of(&float_graph)?;
        let start_w = match self.init {
            Some(ck) => weights(&float_plan, ck),
            None => init_weights(&float_plan.params, cfg.seed),
        };
        let Some(q) = self.quant else {
            if init_quant.is_some() {
                return Err(Failure(format!(
                    "{}: a quantization-aware checkpoint; continue it with the same --quant\n",
                    init_path.display()
                )));
            }
            let st = TrainState::new(&float_plan, cfg);
            return Ok((float_plan, start_w, st));
        };
        if init_quant.is_some() {
            // Continue QAT from its trained thresholds (no calibration).
            same_quant(init_quant.as_ref(), Some(q), init_path.to_str().unwrap_or(""))?;
            let plan = fixed_scales(float_plan, Some(q));
            let st = TrainState::new(&plan, cfg);
            return Ok((plan, start_w, st));
        }
        if self.init.is_none() {
            let how = match q.bn {
                BnFold::FoldSim => "batch norm trains with the quantized layers",
                BnFold::FoldThenQat => "batch norm is folded at its initial values",
            };
            eprintln!("note: QAT from fresh weights ({how}); --init a float checkpoint usually does better");
        }
        let mut store = store_from(&float_plan, &start_w);
        let qgraph = quantize_graph(typed, q, Some(&mut store), true)?;
        let plan = fixed_scales(plan_of(&qgraph)?, Some(q));
        let mut w = weights_from(&plan, &store, cfg.seed);
        calibrate(&plan, &mut w, train_set, q.percentile, cfg.threads);
        let st = TrainState::new(&plan, cfg);
        Ok((plan, w, st))
    }
}

/// With `--scales max` the calibrated thresholds are not trained.
fn fixed_scales(mut plan: Plan, q: Option<&QuantConfig>) -> Plan {
    if q.is_some_and(|q| q.scales == Scales::Max) {
        for p in plan.params.iter_mut().filter(|p| p.init == crate::ir::op::Init::Calibrate) {
            p.trainable = false;
        }
    }
    plan
}

fn same_quant(
    saved: Option<&QuantConfig>,
    asked: Option<&QuantConfig>,
    path: &str,
) -> Result<(), Failure> {
    if saved == asked {
        return Ok(());
    }
    let say = |q: Option<&QuantConfig>| {
        q.map_or("float".to_string(), |q| {
            let bn = if q.bn == BnFold::FoldSim { "fold-sim" } else { "fold-then-qat" };
            let scales = if q.scales == Scales::Max { "max" } else { "learned" };
            let pc = if q.per_channel { " --per-channel" } else { " --per-tensor" };
            let pot = match q.weight_format() {
                WeightFormat::Int => "",
                WeightFormat::Pot => " --pot-weights",
                WeightFormat::Apot => " --apot-weights",
            };
            let input = q.input_bits.map(|b| format!(" --input-bits {b}")).unwrap_or_default();
            let cal =
                q.percentile.map(|p| format!(" --calibration-percentile {p}")).unwrap_or_default();
            format!("--quant {}{input} --bn {bn} --scales {scales}{pc}{pot}{cal}", q.spec())
        })
    };
    Err(Failure(format!(
        "{path}: trained with {}, but this run asks for {}\n",
        say(saved),
        say(asked)
    )))
}
