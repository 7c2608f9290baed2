//! Starting a data-parallel run: which device a rank takes, whether the global batch splits
//! over the ranks, and the proof, before any file is written, that every rank was started
//! with the same settings, the same images and the same starting state.

use super::config::TrainConfig;
use super::state::{StateError, TrainState};
use crate::data::Dataset;
use crate::dist::{DistError, Fingerprint, Shard, World};

/// The device a rank trains on: the one asked for, else (with several ranks) its rank among
/// those on its machine, wrapping around when there are fewer devices than ranks (so a
/// machine with one device runs every rank on it).
pub fn device_for(world: &World, asked: Option<usize>, devices: usize) -> Option<usize> {
    match asked {
        Some(index) => Some(index),
        None if world.size() > 1 && devices > 0 => Some(world.local_rank() % devices),
        None => None,
    }
}

/// Whether `cfg`'s global batch splits over `world`'s ranks in whole minibatch-stddev groups.
pub fn check_batch(world: &World, cfg: &TrainConfig) -> Result<(), String> {
    if world.size() == 1 {
        return Ok(());
    }
    Shard::check(cfg.batch, world.size())
}

/// The settings as the ranks must share them: all but the paths (a data folder or an
/// `--init-from` file may sit elsewhere on another machine; their contents are compared).
fn settings_fingerprint(cfg: &TrainConfig) -> u64 {
    let mut shared = cfg.clone();
    shared.data = None;
    shared.init_from = None;
    let json = serde_json::to_string(&shared).expect("config serialises");
    Fingerprint::default().bytes(json.as_bytes()).value()
}

/// Problems agreeing on a start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Ranks(#[from] DistError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// Refuses to train unless every rank holds rank 0's settings, images and starting state
/// (weights, optimizer moments, step). A no-op for a single process.
pub fn agree_on_start(
    world: &World,
    cfg: &TrainConfig,
    dataset: &Dataset,
    state: &TrainState,
) -> Result<(), StartError> {
    if world.size() == 1 {
        return Ok(());
    }
    let items = [
        ("settings", settings_fingerprint(cfg)),
        ("dataset", dataset.fingerprint()),
        (
            "starting state (weights, optimizer, step)",
            state.fingerprint()?,
        ),
    ];
    world.agree("was started with other settings than rank 0", &items)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_differ_by_what_trains_not_by_paths() {
        let a = TrainConfig::default();
        let mut b = a.clone();
        b.data = Some("/elsewhere/images".into());
        assert_eq!(settings_fingerprint(&a), settings_fingerprint(&b));
        b.lr *= 2.0;
        assert_ne!(settings_fingerprint(&a), settings_fingerprint(&b));
    }

    #[test]
    fn one_process_takes_the_default_device_or_the_one_asked_for() {
        let world = World::single();
        assert_eq!(device_for(&world, None, 3), None);
        assert_eq!(device_for(&world, Some(2), 3), Some(2));
    }
}
