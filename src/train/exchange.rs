//! The host side of a split step ([`super::programs::Exchange`]): the packed tensor, with the
//! host's own values appended, summed over the ranks by one all-reduce, divided into averages
//! where averages are wanted, non-finite gradients replaced as the reference trainers replace
//! them, and written back for the update program. It also keeps the time and bytes this
//! costs, for the run's closing report.

use super::programs::Exchange;
use crate::dist::{nan_to_num, World};
use crate::vk::VkError;
use std::time::{Duration, Instant};

/// The host values a step sends along with its packed tensor: `averaged` are divided by the
/// number of ranks after the sum (losses, scores), `summed` are not (counts, flags).
pub struct HostValues<'a> {
    pub averaged: &'a [f32],
    pub summed: &'a [f32],
}

/// The host values after the all-reduce, in the order sent.
pub struct Reduced {
    pub averaged: Vec<f32>,
    pub summed: Vec<f32>,
}

/// What the run's all-reduces have cost so far.
#[derive(Default)]
pub struct ExchangeCost {
    pub calls: u64,
    pub bytes: u64,
    /// Reading the packed tensor from the device and writing the averages back.
    pub device_time: Duration,
    /// In MPI: the transfer, and waiting for the slowest rank to arrive.
    pub mpi_time: Duration,
}

impl ExchangeCost {
    /// One line for the run's report: bytes and milliseconds per step.
    pub fn report(&self, steps: u64, ranks: usize) -> Option<String> {
        if self.calls == 0 || steps == 0 {
            return None;
        }
        let per_step = self.bytes as f64 / steps as f64;
        let ms = |d: Duration| d.as_secs_f64() * 1e3 / steps as f64;
        Some(format!(
            "all-reduce over {ranks} ranks: {:.2} MB per step; per step {:.1} ms in MPI \
             (waiting for the slowest rank included) and {:.1} ms moving it off and onto the \
             device",
            per_step / 1e6,
            ms(self.mpi_time),
            ms(self.device_time)
        ))
    }
}

/// All-reduces `exchange.flat` and `host` over `world` and writes the averaged tensor back;
/// returns the reduced host values.
pub fn all_reduce(
    world: &World,
    exchange: &Exchange,
    host: HostValues,
    cost: &mut ExchangeCost,
) -> Result<Reduced, VkError> {
    let start = Instant::now();
    let mut buf = exchange.flat.to_vec()?;
    let packed = buf.len();
    buf.extend_from_slice(host.averaged);
    buf.extend_from_slice(host.summed);
    let read = start.elapsed();
    world.all_reduce_sum(&mut buf);
    let reduced = start.elapsed();
    let averaged_end = packed + host.averaged.len();
    let ranks = world.size() as f32;
    for v in &mut buf[..averaged_end] {
        *v /= ranks;
    }
    nan_to_num(&mut buf[..exchange.grad_len]);
    exchange.flat.write(&buf[..packed])?;
    cost.calls += 1;
    cost.bytes += (buf.len() * 4) as u64;
    cost.device_time += read + (start.elapsed() - reduced);
    cost.mpi_time += reduced - read;
    Ok(Reduced {
        averaged: buf[packed..averaged_end].to_vec(),
        summed: buf[averaged_end..].to_vec(),
    })
}
