//! Float training: initialisation, calibration of the quantizers'
//! thresholds before quantization-aware training, optimizers, schedules and
//! the loop.

pub mod calibrate;
pub mod checkpoint;
pub mod fit;
pub mod init;
pub mod optim;
pub mod schedule;

pub use fit::{
    evaluate, fit, Diverged, EpochRecord, Evaluation, Keep, Kept, TrainConfig, TrainState,
};
pub use init::init_weights;
pub use optim::{OptState, Optimizer};
pub use schedule::{Schedule, ScheduleState};
