//! A data set through the exact fake-quant evaluation (the reference
//! arithmetic) and, for the signal-to-quantization-noise ratio, through the
//! float network: the same plan with every quantizer and weight quantization
//! off, as calibration runs it.

use super::grid::GridUse;
use super::{Kind, QuantizerUse};
use crate::data::batch;
use crate::data::Dataset;
use crate::interp::exact::{exact_values, fake_quant64};
use crate::interp::exec::float_values;
use crate::interp::plan::Plan;
use crate::interp::Weights;
use crate::ir::op::Op;
use crate::quant::quantizer::{in_range64, pow2, quantize64};
use crate::quant::QuantSpec;

/// What a data set showed.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Every `fake_quant` of the plan, in order.
    pub activations: Vec<QuantizerUse>,
    /// With `sqnr`: per quantizer output and then the network's output, its
    /// name and `10 log10(sum x_float^2 / sum (x_float - x_quant)^2)` in dB
    /// (`None` when the two agree exactly).
    pub sqnr_db: Vec<(String, Option<f64>)>,
}

/// Runs `ds` through `plan` (an inference plan, batch norm folded) in
/// batches of 64; the float network too when `sqnr`.
pub fn observe(plan: &Plan, w: &Weights, ds: &Dataset, threads: usize, sqnr: bool) -> Observation {
    let mut acts: Vec<Activation> =
        plan.steps.iter().filter_map(|s| Activation::new(s, w)).collect();
    let mut meter = sqnr.then(|| Meter::new(plan));
    let all: Vec<usize> = (0..ds.n).collect();
    for chunk in all.chunks(plan.batch_within(64)) {
        let x = batch(ds, chunk);
        let exact =
            exact_values(plan, w, x.iter().map(|&v| f64::from(v)).collect(), chunk.len(), threads);
        for a in &mut acts {
            a.add(&exact[a.slot]);
        }
        if let Some(m) = meter.as_mut() {
            m.add(&float_values(plan, w, x, chunk.len(), threads), &exact);
        }
    }
    Observation {
        activations: acts.into_iter().map(Activation::finish).collect(),
        sqnr_db: meter.map_or_else(Vec::new, |m| m.db()),
    }
}

/// One `fake_quant`: its input slot, grid and squared errors (on its
/// exponent and the one above).
struct Activation {
    name: String,
    slot: usize,
    spec: QuantSpec,
    e: i32,
    grid: GridUse,
    /// On the exponent and the `WIDER_STEPS` above it.
    err: [f64; 1 + super::WIDER_STEPS],
}

impl Activation {
    fn new(s: &crate::interp::plan::Step, w: &Weights) -> Option<Activation> {
        let Op::FakeQuant(fq) = &s.op else { return None };
        let spec = QuantSpec { bits: fq.bits as u32, signed: fq.signed, narrow: fq.narrow };
        let e = spec.exponent(*w.get(*s.params.first()?)?.first()?);
        let levels = (spec.qmax() - spec.qmin() + 1) as u64;
        let grid = GridUse::new(spec.qmin(), spec.qmax(), levels);
        Some(Activation {
            name: s.name.clone(),
            slot: *s.args.first()?,
            spec,
            e,
            grid,
            err: [0.0; 1 + super::WIDER_STEPS],
        })
    }

    fn add(&mut self, x: &[f64]) {
        for &v in x {
            // An unsigned quantizer's clamp at 0 is the relu the plan fused
            // into it: only the top clips, and the relu's output is the target.
            let v = if self.spec.signed { v } else { v.max(0.0) };
            self.grid
                .add(quantize64(v, self.e, &self.spec) as i64, !in_range64(v, self.e, &self.spec));
            for (k, err) in self.err.iter_mut().enumerate() {
                let e = self.e + k as i32;
                let d = v - fake_quant64(v, e, &self.spec);
                *err += d * d;
            }
        }
    }

    fn finish(self) -> QuantizerUse {
        QuantizerUse {
            name: self.name,
            kind: Kind::Activations { signed: self.spec.signed },
            bits: self.spec.bits,
            values: self.grid.values,
            clipped: self.grid.clipped,
            levels_used: self.grid.used(),
            levels: self.grid.available,
            group_values: self.grid.values,
            limit: self.spec.qmax() as f64 * pow2(self.e) as f64,
            wider_is_better: super::wider_is_better(self.err[0], &self.err[1..]),
        }
    }
}

/// Sums of `x_float^2` and `(x_float - x_quant)^2` per measured value.
struct Meter {
    points: Vec<(String, usize)>,
    signal: Vec<f64>,
    noise: Vec<f64>,
}

impl Meter {
    /// Each quantizer's output (a layer's end), then the network's output.
    fn new(plan: &Plan) -> Meter {
        let mut points: Vec<(String, usize)> = plan
            .steps
            .iter()
            .filter(|s| matches!(s.op, Op::FakeQuant(_)))
            .map(|s| (s.name.clone(), s.out))
            .collect();
        let out = plan.steps.iter().find(|s| s.out == plan.output);
        if let Some(s) = out.filter(|s| !points.iter().any(|p| p.1 == s.out)) {
            points.push((s.name.clone(), s.out));
        }
        let n = points.len();
        Meter { points, signal: vec![0.0; n], noise: vec![0.0; n] }
    }

    fn add(&mut self, float: &[Vec<f32>], quant: &[Vec<f64>]) {
        for (i, (_, slot)) in self.points.iter().enumerate() {
            for (&f, &q) in float[*slot].iter().zip(&quant[*slot]) {
                let f = f64::from(f);
                self.signal[i] += f * f;
                self.noise[i] += (f - q) * (f - q);
            }
        }
    }

    fn db(self) -> Vec<(String, Option<f64>)> {
        let db = self.signal.iter().zip(&self.noise).map(|(&s, &n)| sqnr_db(s, n));
        self.points.into_iter().map(|p| p.0).zip(db).collect()
    }
}

/// `10 log10(signal / noise)`; `None` without noise (or signal).
pub fn sqnr_db(signal: f64, noise: f64) -> Option<f64> {
    (noise > 0.0 && signal > 0.0).then(|| 10.0 * (signal / noise).log10())
}
