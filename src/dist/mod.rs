//! Data-parallel training across processes: which rank this process is, its share of every
//! global batch, and the collectives the training loop needs (one all-reduce of one flat
//! buffer per network update, and the start-up and checkpoint-time agreement checks).
//!
//! The engine is MPI (the `mpi` cargo feature, launched by `mpirun`); without a launcher the
//! process is the one rank of a [`World::single`], and every collective is the identity. No
//! Vulkan type appears here.
//!
//! Sharding keeps the minibatch-stddev groups whole. The discriminator groups a batch of `B`
//! samples with stride `B / G` (sample `j` belongs to group `j % (B / G)`, as the reference's
//! `view(G, -1, ...)` does), so rank `r` of `N` takes groups `r·B/(G·N) .. (r+1)·B/(G·N)`:
//! local sample `i·(b/G) + j` (with `b = B/N`, `i < G`, `j < b/G`) is global sample
//! `i·(B/G) + r·(b/G) + j`. Each rank's local batch is then grouped exactly as the global
//! batch is, and every sample sees the same latents, noise and real image it would in a
//! single-process run of the global batch.

#[cfg(feature = "mpi")]
mod mpi_world;

use std::fmt;

/// The minibatch-stddev group size of the discriminator (the reference's 4).
pub const MBSTD_GROUP: usize = 4;

/// The reference trainers' replacement of non-finite averaged gradients (stylegan2-ada-pytorch's
/// `nan_to_num(nan=0, posinf=1e5, neginf=-1e5)` after its all-reduce).
pub fn nan_to_num(values: &mut [f32]) {
    for v in values {
        if v.is_nan() {
            *v = 0.0;
        } else if *v == f32::INFINITY {
            *v = 1e5;
        } else if *v == f32::NEG_INFINITY {
            *v = -1e5;
        }
    }
}

/// A 64-bit FNV-1a hash: stable across builds and machines, for the agreement checks.
#[derive(Clone, Copy)]
pub struct Fingerprint(u64);

impl Default for Fingerprint {
    fn default() -> Self {
        Fingerprint(0xcbf2_9ce4_8422_2325)
    }
}

impl Fingerprint {
    pub fn bytes(mut self, bytes: &[u8]) -> Self {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self
    }

    pub fn f32s(self, values: &[f32]) -> Self {
        let mut h = self;
        for v in values {
            h = h.bytes(&v.to_bits().to_le_bytes());
        }
        h
    }

    pub fn value(self) -> u64 {
        self.0
    }
}

/// Rank `rank`'s part of every global batch of `batch` samples (see the module header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub rank: usize,
    pub ranks: usize,
}

impl Shard {
    /// The whole batch: a single-process run.
    pub fn whole() -> Shard {
        Shard { rank: 0, ranks: 1 }
    }

    /// Why `batch` cannot be split over `ranks` with whole minibatch-stddev groups, if it
    /// cannot.
    pub fn check(batch: usize, ranks: usize) -> Result<(), String> {
        if ranks == 0 || batch % (MBSTD_GROUP * ranks) != 0 {
            return Err(format!(
                "--batch {batch} cannot be split over {ranks} ranks: the global batch must be a \
                 multiple of {} (ranks times the minibatch-stddev group of {MBSTD_GROUP}), so \
                 that every rank holds whole groups",
                MBSTD_GROUP * ranks
            ));
        }
        Ok(())
    }

    /// Samples per rank.
    pub fn local(&self, batch: usize) -> usize {
        batch / self.ranks
    }

    /// The minibatch-stddev groups of a batch of `batch`: (how many, the first of this
    /// rank's, how many are this rank's). Group `g` holds samples `g, g + groups, ...`.
    pub fn groups(&self, batch: usize) -> (usize, usize, usize) {
        let groups = batch / MBSTD_GROUP;
        let mine = groups / self.ranks;
        (groups, self.rank * mine, mine)
    }

    /// The global sample index of each local sample, in local order.
    pub fn samples(&self, batch: usize) -> Vec<usize> {
        // One rank holds the batch as it is, whatever its size (the loader serves batches
        // that are no multiple of the group to other users than training).
        if self.ranks == 1 {
            return (0..batch).collect();
        }
        let (groups, first, mine) = self.groups(batch);
        (0..MBSTD_GROUP)
            .flat_map(|i| (0..mine).map(move |j| i * groups + first + j))
            .collect()
    }

    /// The rows of `values` (`batch` rows of equal length) that are this rank's, in local
    /// order.
    pub fn rows(&self, values: &[f32], batch: usize) -> Vec<f32> {
        if self.ranks == 1 {
            return values.to_vec();
        }
        let row = values.len() / batch;
        self.samples(batch)
            .into_iter()
            .flat_map(|s| values[s * row..(s + 1) * row].iter().copied())
            .collect()
    }
}

/// Problems starting or talking to the other ranks.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    #[error(
        "this process was started by an MPI launcher as one of {0} ranks, but this vkgan was \
         built without the `mpi` feature, so each rank would train alone: rebuild with \
         `cargo build --release --features mpi` (see the README's multi-GPU section)"
    )]
    NoMpiSupport(usize),
    #[error("MPI could not be initialised (was MPI already initialised in this process?)")]
    Init,
    #[error("{0}")]
    Disagree(String),
}

/// The ranks of a job, as this process sees them.
pub struct World {
    rank: usize,
    size: usize,
    local_rank: usize,
    #[cfg(feature = "mpi")]
    mpi: Option<mpi_world::MpiWorld>,
}

impl fmt::Debug for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "World(rank {} of {})", self.rank, self.size)
    }
}

/// How many ranks an MPI launcher says the job has, if one started this process (Open MPI,
/// MPICH's Hydra and PMIx launchers such as Slurm's set these).
fn launcher_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.parse().ok())
}

impl World {
    /// One process alone.
    pub fn single() -> World {
        World {
            rank: 0,
            size: 1,
            local_rank: 0,
            #[cfg(feature = "mpi")]
            mpi: None,
        }
    }

    /// The job this process belongs to: MPI's world when an MPI launcher started it (and the
    /// `mpi` feature is built in), else a single process. A launched job without the feature
    /// is an error, not N independent runs writing over each other.
    pub fn from_environment() -> Result<World, DistError> {
        let Some(size) = launcher_size() else {
            return Ok(World::single());
        };
        #[cfg(feature = "mpi")]
        {
            let _ = size;
            mpi_world::MpiWorld::init().map(|(mpi, rank, size, local_rank)| World {
                rank,
                size,
                local_rank,
                mpi: Some(mpi),
            })
        }
        #[cfg(not(feature = "mpi"))]
        {
            if size > 1 {
                return Err(DistError::NoMpiSupport(size));
            }
            Ok(World::single())
        }
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// This rank's index among the ranks on its machine (which device it takes by default).
    pub fn local_rank(&self) -> usize {
        self.local_rank
    }

    /// Whether this rank writes the run's files (rank 0 alone does).
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    pub fn shard(&self) -> Shard {
        Shard {
            rank: self.rank,
            ranks: self.size,
        }
    }

    /// Sums `values` over all ranks, in place; every rank gets the same sums.
    pub fn all_reduce_sum(&self, values: &mut [f32]) {
        #[cfg(feature = "mpi")]
        if let Some(mpi) = &self.mpi {
            mpi.all_reduce_sum(values);
        }
        let _ = values;
    }

    /// Every rank's `values`, rank by rank.
    pub fn all_gather(&self, values: &[u64]) -> Vec<Vec<u64>> {
        #[cfg(feature = "mpi")]
        if let Some(mpi) = &self.mpi {
            return mpi.all_gather(values);
        }
        vec![values.to_vec()]
    }

    /// Checks that every rank holds the same named fingerprints (`what`, `fingerprints`):
    /// the error names the first rank and the first item that differ from rank 0's.
    pub fn agree(&self, what: &str, items: &[(&str, u64)]) -> Result<(), DistError> {
        let mine: Vec<u64> = items.iter().map(|&(_, v)| v).collect();
        let all = self.all_gather(&mine);
        for (rank, theirs) in all.iter().enumerate().skip(1) {
            if let Some(k) = (0..items.len()).find(|&k| theirs[k] != all[0][k]) {
                return Err(DistError::Disagree(format!(
                    "rank {rank} {what}: its {} differs from rank 0's",
                    items[k].0
                )));
            }
        }
        Ok(())
    }

    /// Ends the whole job at once (every rank, on every machine) with `code`; a single
    /// process just exits.
    pub fn abort(&self, code: i32) -> ! {
        #[cfg(feature = "mpi")]
        if let Some(mpi) = &self.mpi {
            mpi.abort(code);
        }
        std::process::exit(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_once_with_whole_groups() {
        let batch = 16;
        let groups = batch / MBSTD_GROUP;
        for ranks in [1, 2, 4] {
            let mut seen = vec![0; batch];
            for rank in 0..ranks {
                let shard = Shard { rank, ranks };
                let samples = shard.samples(batch);
                assert_eq!(samples.len(), batch / ranks);
                let local_groups = samples.len() / MBSTD_GROUP;
                for (l, &s) in samples.iter().enumerate() {
                    seen[s] += 1;
                    // Local group of l (stride local_groups) is the global group of s.
                    assert_eq!(
                        s % groups,
                        rank * local_groups + l % local_groups,
                        "ranks {ranks}"
                    );
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "{seen:?}");
        }
        assert_eq!(Shard::whole().samples(8), (0..8).collect::<Vec<_>>());
        assert_eq!(Shard::whole().samples(5), (0..5).collect::<Vec<_>>());
        assert_eq!(
            Shard { rank: 1, ranks: 2 }.samples(8),
            vec![1, 3, 5, 7],
            "groups of stride 2: {{0,2,4,6}} on rank 0 and {{1,3,5,7}} on rank 1"
        );
    }

    #[test]
    fn rows_follow_the_samples() {
        let values: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let shard = Shard { rank: 1, ranks: 2 };
        assert_eq!(
            shard.rows(&values, 8),
            vec![2.0, 3.0, 6.0, 7.0, 10.0, 11.0, 14.0, 15.0]
        );
    }

    #[test]
    fn batches_must_split_into_whole_groups() {
        assert!(Shard::check(16, 2).is_ok());
        let e = Shard::check(12, 2).unwrap_err();
        assert!(
            e.contains("--batch 12") && e.contains("multiple of 8"),
            "{e}"
        );
    }

    #[test]
    fn non_finite_gradients_become_the_reference_trainers_values() {
        let mut v = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 2.5];
        nan_to_num(&mut v);
        assert_eq!(v, [0.0, 1e5, -1e5, 2.5]);
    }

    #[test]
    fn a_single_world_agrees_with_itself_and_reduces_to_identity() {
        let w = World::single();
        let mut v = [1.0, 2.0];
        w.all_reduce_sum(&mut v);
        assert_eq!(v, [1.0, 2.0]);
        assert!(w.agree("was started", &[("config", 7)]).is_ok());
        assert_eq!(
            Fingerprint::default().bytes(b"a").value(),
            0xaf63_dc4c_8601_ec8c
        );
    }
}
