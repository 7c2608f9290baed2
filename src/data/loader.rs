//! Batch order and the prefetching loader.

use super::{DataError, Dataset};
use crate::dist::Shard;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The order in which epoch `epoch` visits the `len` images: a Fisher-Yates shuffle driven by
/// ChaCha12 (the algorithm of rand 0.8's `StdRng`, named explicitly so the order cannot change
/// with rand's choice of `StdRng`) keyed by `(seed, epoch)`. Draws are taken as u64 so the
/// order is the same on 32- and 64-bit targets.
pub fn epoch_permutation(len: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&epoch.to_le_bytes());
    let mut rng = ChaCha12Rng::from_seed(key);
    let mut order: Vec<usize> = (0..len).collect();
    for i in (1..len).rev() {
        let j = rng.gen_range(0..=i as u64) as usize;
        order.swap(i, j);
    }
    order
}

/// The dataset indices of step `step`'s batch: with `b = len / batch_size` full batches per
/// epoch (the last partial batch is dropped, as the reference's `drop_last=True`), step `k` is
/// batch `k % b` of epoch `k / b`'s permutation. Panics unless `0 < batch_size <= len`.
pub fn batch_indices(len: usize, batch_size: usize, seed: u64, step: u64) -> Vec<usize> {
    assert!(
        batch_size > 0 && batch_size <= len,
        "batch size {batch_size} for {len} images"
    );
    let per_epoch = (len / batch_size) as u64;
    let (epoch, pos) = (step / per_epoch, (step % per_epoch) as usize);
    epoch_permutation(len, seed, epoch)[pos * batch_size..(pos + 1) * batch_size].to_vec()
}

/// One batch: `data` is `[shape[0], 3, N, N]` f32 in `[0, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub step: u64,
    pub epoch: u64,
    pub shape: [usize; 4],
    /// Which dataset images, in batch order.
    pub indices: Vec<usize>,
    pub data: Vec<f32>,
}

/// An endless, reproducible stream of batches, prepared ahead on background threads.
///
/// Worker `w` of `W` builds steps `start + w`, `start + w + W`, ... (shuffling, and for
/// streaming datasets decoding and resizing) and keeps up to `depth` of them ready in its own
/// bounded channel; [`Loader::next_batch`] takes them round-robin, so batches arrive in step
/// order whatever the threads' timing, and at most `W * depth` are held at once. Step `k`'s
/// batch equals [`Dataset::batch`]`(batch_size, seed, k)`: to resume a run at step `k`, create
/// the loader with `start_step = k`. Dropping the loader stops and joins the workers.
///
/// A loader for one rank of a data-parallel job ([`Loader::sharded`]) decodes only that rank's
/// share of each global batch, in its local order ([`Shard::samples`]).
pub struct Loader {
    dataset: Arc<Dataset>,
    batch_size: usize,
    seed: u64,
    start: u64,
    next: u64,
    receivers: Vec<Receiver<Result<Batch, DataError>>>,
    handles: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Loader {
    /// A loader with the default threads: one for cached datasets (a batch is a copy), up to
    /// half the cores (at most 8) for streaming ones; each keeps 2 batches ready (4 if alone).
    pub fn new(
        dataset: Arc<Dataset>,
        batch_size: usize,
        seed: u64,
        start_step: u64,
    ) -> Result<Loader, DataError> {
        Loader::sharded(dataset, batch_size, seed, start_step, Shard::whole())
    }

    /// As [`Loader::new`], for rank `shard.rank`'s share of every global batch of
    /// `batch_size`.
    pub fn sharded(
        dataset: Arc<Dataset>,
        batch_size: usize,
        seed: u64,
        start_step: u64,
        shard: Shard,
    ) -> Result<Loader, DataError> {
        let threads = if dataset.is_cached() {
            1
        } else {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cores / 2).clamp(1, 8)
        };
        let depth = if threads == 1 { 4 } else { 2 };
        Loader::with_threads(dataset, batch_size, seed, start_step, threads, depth, shard)
    }

    /// A loader with `threads` workers each keeping up to `depth` batches ready.
    pub fn with_threads(
        dataset: Arc<Dataset>,
        batch_size: usize,
        seed: u64,
        start_step: u64,
        threads: usize,
        depth: usize,
        shard: Shard,
    ) -> Result<Loader, DataError> {
        if batch_size == 0 {
            return Err(DataError::ZeroBatchSize);
        }
        if batch_size > dataset.len() {
            return Err(DataError::BatchTooLarge {
                batch: batch_size,
                len: dataset.len(),
            });
        }
        let threads = threads.max(1);
        let share = Arc::new(shard.samples(batch_size));
        let stop = Arc::new(AtomicBool::new(false));
        let mut receivers = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for w in 0..threads {
            let (tx, rx) = sync_channel(depth.max(1));
            let dataset = Arc::clone(&dataset);
            let stop = Arc::clone(&stop);
            let share = Arc::clone(&share);
            let handle = std::thread::Builder::new()
                .name(format!("vkgan-data-{w}"))
                .spawn(move || {
                    let len = dataset.len();
                    let per_epoch = (len / batch_size) as u64;
                    let numel = dataset.sample_len();
                    let mut order: Option<(u64, Vec<usize>)> = None;
                    let mut step = start_step + w as u64;
                    while !stop.load(Ordering::Relaxed) {
                        let (epoch, pos) = (step / per_epoch, (step % per_epoch) as usize);
                        if order.as_ref().is_none_or(|(e, _)| *e != epoch) {
                            order = Some((epoch, epoch_permutation(len, seed, epoch)));
                        }
                        let perm = &order.as_ref().unwrap().1;
                        let global = &perm[pos * batch_size..(pos + 1) * batch_size];
                        let indices: Vec<usize> = share.iter().map(|&s| global[s]).collect();
                        let mut data = vec![0.0; indices.len() * numel];
                        let size = dataset.image_size();
                        let batch = dataset.try_fill(&indices, &mut data).map(|()| Batch {
                            step,
                            epoch,
                            shape: [indices.len(), 3, size, size],
                            indices,
                            data,
                        });
                        let failed = batch.is_err();
                        if tx.send(batch).is_err() || failed {
                            break;
                        }
                        step += threads as u64;
                    }
                })
                .expect("cannot start a data loader thread");
            receivers.push(rx);
            handles.push(handle);
        }
        Ok(Loader {
            dataset,
            batch_size,
            seed,
            start: start_step,
            next: start_step,
            receivers,
            handles,
            stop,
        })
    }

    /// The next batch in step order; waits only if the workers have fallen behind. An error
    /// when no image of a streaming dataset decodes any more (or a worker died).
    pub fn next_batch(&mut self) -> Result<Batch, DataError> {
        let w = ((self.next - self.start) % self.receivers.len() as u64) as usize;
        let batch = self.receivers[w]
            .recv()
            .map_err(|_| DataError::LoaderDied)??;
        debug_assert_eq!(batch.step, self.next);
        self.next += 1;
        Ok(batch)
    }

    /// The step of the batch [`Loader::next_batch`] returns next.
    pub fn step(&self) -> u64 {
        self.next
    }

    /// Full batches per epoch (`len / batch_size`).
    pub fn batches_per_epoch(&self) -> u64 {
        (self.dataset.len() / self.batch_size) as u64
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn dataset(&self) -> &Arc<Dataset> {
        &self.dataset
    }
}

impl Iterator for Loader {
    type Item = Batch;

    /// The stream cycles through epochs forever; `None` only where [`Loader::next_batch`]
    /// fails.
    fn next(&mut self) -> Option<Batch> {
        self.next_batch().ok()
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // A worker blocked on a full channel wakes with an error once its receiver is gone.
        self.receivers.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}
