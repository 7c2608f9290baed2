//! Shared by the integration tests: a context on the test device with the Khronos validation
//! layer on, which fails the test if the layer reported anything.

#![allow(dead_code)]

use vkgan::vk::{Context, ContextOptions};

pub struct ValidatedContext {
    pub ctx: Context,
}

impl std::ops::Deref for ValidatedContext {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl Drop for ValidatedContext {
    fn drop(&mut self) {
        let messages = self.ctx.take_validation_messages();
        if !messages.is_empty() && !std::thread::panicking() {
            panic!("Vulkan validation reported:\n{}", messages.join("\n"));
        }
    }
}

/// The device tests run on (`VKGAN_TEST_DEVICE=N` to choose), validation required.
pub fn context() -> ValidatedContext {
    let device = std::env::var("VKGAN_TEST_DEVICE")
        .ok()
        .map(|d| d.parse().expect("VKGAN_TEST_DEVICE is a device index"));
    let ctx = Context::new(&ContextOptions {
        device,
        validate: true,
    })
    .unwrap_or_else(|e| panic!("tests need a Vulkan device with validation layers: {e}"));
    assert!(ctx.validating());
    ValidatedContext { ctx }
}

/// Deterministic values in [-2, 2].
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0) as f32
        })
        .collect()
}

/// `|g - c| <= atol + rtol |c|` everywhere, else a panic naming the worst element.
pub fn assert_close(got: &[f32], want: &[f32], atol: f32, rtol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut worst: Option<(usize, f32)> = None;
    for (i, (&g, &c)) in got.iter().zip(want).enumerate() {
        // A non-finite value counts as infinitely wrong.
        let excess = if g.is_finite() {
            (g - c).abs() - (atol + rtol * c.abs())
        } else {
            f32::INFINITY
        };
        if excess > 0.0 && worst.is_none_or(|(_, e)| excess > e) {
            worst = Some((i, excess));
        }
    }
    if let Some((i, _)) = worst {
        panic!(
            "{what}: element {i} is {} but the reference is {} (atol {atol}, rtol {rtol})",
            got[i], want[i]
        );
    }
}
