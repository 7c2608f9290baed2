//! Shared by the integration tests: see `vkgan::testing`.

#![allow(unused_imports)]

pub use vkgan::testing::{assert_close, context, context_with_limits, values, ValidatedContext};
