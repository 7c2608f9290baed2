//! Training on the device: the run's configuration, the optimizer recorded into the step, the
//! four recorded step programs, the state a run carries between steps (and its checkpoint
//! layout), the sampler of the moving-average generator, and the loop that drives them.
//! Files a run writes go through [`crate::persist`] (checkpoints) and [`crate::outputs`]
//! (sample grids, plots, the run log).

pub mod config;
pub mod optim;
pub mod programs;
pub mod run;
pub mod sample;
pub mod state;
