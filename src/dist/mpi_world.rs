//! The MPI side of [`super::World`]: initialisation, the all-reduce and all-gather, and abort,
//! through the `mpi` crate. Only the main thread calls MPI (the data loader's threads never
//! do), which is what MPI_THREAD_FUNNELED promises.

use super::DistError;
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Threading;

pub struct MpiWorld {
    world: SimpleCommunicator,
    // Finalises MPI when dropped, after the communicator above.
    _universe: Universe,
}

impl MpiWorld {
    /// (world, rank, size, rank on this machine).
    pub fn init() -> Result<(MpiWorld, usize, usize, usize), DistError> {
        let (universe, _provided) =
            mpi::initialize_with_threading(Threading::Funneled).ok_or(DistError::Init)?;
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        let local_rank = world.split_shared(world.rank()).rank() as usize;
        let me = MpiWorld {
            world,
            _universe: universe,
        };
        Ok((me, rank, size, local_rank))
    }

    pub fn all_reduce_sum(&self, values: &mut [f32]) {
        let send = values.to_vec();
        self.world
            .all_reduce_into(&send[..], values, SystemOperation::sum());
    }

    pub fn all_gather(&self, values: &[u64]) -> Vec<Vec<u64>> {
        let size = self.world.size() as usize;
        let mut all = vec![0u64; values.len() * size];
        self.world.all_gather_into(values, &mut all[..]);
        all.chunks(values.len().max(1))
            .map(|c| c.to_vec())
            .collect()
    }

    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}
