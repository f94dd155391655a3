//! Learning-rate schedules, stepped once per epoch: constant, cosine, and
//! reduce-on-plateau on the training loss (how Wang et al. train the FCN:
//! halve the rate after 50 epochs without improvement, down to 1e-4).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Schedule {
    Constant,
    /// From the base rate to `min_lr` over the run, half a cosine.
    Cosine {
        min_lr: f32,
    },
    /// Multiply by `factor` after `patience` epochs in which the training loss
    /// did not improve by more than a relative 1e-4, never below `min_lr`.
    Plateau {
        factor: f32,
        patience: u32,
        min_lr: f32,
    },
}

/// What a schedule remembers between epochs; saved for `--resume`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScheduleState {
    pub lr: f32,
    /// The lowest training loss so far (`None` before the first epoch; JSON
    /// has no infinity).
    pub best: Option<f64>,
    pub bad_epochs: u32,
}

impl ScheduleState {
    pub fn new(lr: f32) -> Self {
        ScheduleState { lr, best: None, bad_epochs: 0 }
    }
}

impl Schedule {
    /// The rate for epoch `epoch + 1` (0-based `epoch` just finished with `loss`).
    pub fn next(
        &self,
        st: &mut ScheduleState,
        base_lr: f32,
        epoch: usize,
        epochs: usize,
        loss: f64,
    ) {
        match *self {
            Schedule::Constant => {}
            Schedule::Cosine { min_lr } => {
                let t = (epoch + 1) as f32 / epochs.max(1) as f32;
                st.lr =
                    min_lr + (base_lr - min_lr) * 0.5 * (1.0 + (std::f32::consts::PI * t).cos());
            }
            Schedule::Plateau { factor, patience, min_lr } => {
                if st.best.is_none_or(|best| loss < best * (1.0 - 1e-4)) {
                    st.best = Some(loss);
                    st.bad_epochs = 0;
                } else {
                    st.bad_epochs += 1;
                    if st.bad_epochs > patience {
                        st.lr = (st.lr * factor).max(min_lr);
                        st.bad_epochs = 0;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plateau_halves_after_patience_and_stops_at_the_floor() {
        let s = Schedule::Plateau { factor: 0.5, patience: 2, min_lr: 0.2 };
        let mut st = ScheduleState::new(1.0);
        for (e, loss) in [1.0, 1.0, 1.0, 1.0].iter().enumerate() {
            s.next(&mut st, 1.0, e, 10, *loss);
        }
        assert_eq!(st.lr, 0.5);
        for e in 0..20 {
            s.next(&mut st, 1.0, e, 10, 1.0);
        }
        assert_eq!(st.lr, 0.2);
    }

    #[test]
    fn cosine_ends_at_the_floor() {
        let s = Schedule::Cosine { min_lr: 0.0 };
        let mut st = ScheduleState::new(1.0);
        s.next(&mut st, 1.0, 9, 10, 0.0);
        assert!(st.lr.abs() < 1e-6);
        s.next(&mut st, 1.0, 4, 10, 0.0);
        assert!((st.lr - 0.5).abs() < 1e-6);
    }
}
