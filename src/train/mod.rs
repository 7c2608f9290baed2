//! Training on the device: the run's configuration, the optimizer recorded into the step, the
//! four recorded step programs, the state a run carries between steps (and its checkpoint
//! layout), the sampler of the moving-average generator, the loop that drives them, the
//! snapshots (sample grids, plots, MS-SWD) it takes along the way and what it reports on the
//! console (throughput, kimg, time left), which settings a resumed run may change, and the
//! checkpoint a fine-tuning run starts from.
//! Files a run writes go through [`crate::persist`] (checkpoints) and [`crate::outputs`]
//! (sample grids, plots, the run log).

pub mod augment;
pub mod config;
pub mod exchange;
pub mod init;
pub mod optim;
pub mod programs;
pub mod progress;
pub mod ranks;
pub mod resume;
pub mod run;
pub mod sample;
mod snapshots;
pub mod state;
