//! Constants for dividing by a divisor fixed for a whole dispatch with a multiply-high and two
//! shifts (Granlund & Montgomery 1994, fig. 4.1), as `fast_div` in shaders/common/fastdiv.glsl
//! does: with l = ceil(log2 d) and m = floor(2^32 (2^l - d) / d) + 1,
//!   t = (m n) >> 32,  n / d = (t + ((n - t) >> min(l, 1))) >> (max(l, 1) - 1)
//! for every 32-bit n. CPU Vulkan drivers run integer division lane by lane, tens of cycles per
//! element; index arithmetic in elementwise kernels uses this instead.

/// (magic, log) for divisor `d` (at least 1, below 2^31).
pub(crate) fn magic(d: u32) -> (u32, u32) {
    assert!((1..1 << 31).contains(&d), "divisor {d} out of range");
    let log = 32 - (d - 1).leading_zeros();
    let magic = (((1u64 << 32) * ((1u64 << log) - d as u64)) / d as u64 + 1) as u32;
    (magic, log)
}

/// The shader's formula on the host, for tests.
#[cfg(test)]
fn divide(n: u32, (magic, log): (u32, u32)) -> u32 {
    let t = ((magic as u64 * n as u64) >> 32) as u32;
    (t + ((n - t) >> log.min(1))) >> (log.max(1) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_for_edge_numerators_and_many_divisors() {
        let mut divisors: Vec<u32> = (1..=300).collect();
        divisors.extend([
            511,
            512,
            513,
            1023,
            1024,
            1025,
            4096,
            65535,
            65536,
            1 << 20,
            3 << 20,
        ]);
        divisors.extend([(1 << 31) - 1, 1_000_003]);
        for d in divisors {
            let m = magic(d);
            for n in [
                0,
                1,
                d - 1,
                d,
                d + 1,
                2 * d,
                12345,
                u32::MAX / 2,
                u32::MAX - 1,
                u32::MAX,
            ] {
                assert_eq!(divide(n, m), n / d, "{n} / {d}");
            }
            for k in 0..2000u32 {
                let n = k.wrapping_mul(2654435761);
                assert_eq!(divide(n, m), n / d, "{n} / {d}");
            }
        }
    }
}
