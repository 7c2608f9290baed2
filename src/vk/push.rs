//! Typed push constants. build.rs reflects every kernel's push block and writes one struct per
//! block (`$OUT_DIR/push.rs`, included here): a field per member in offset order, named as the
//! shader names it, typed by the member's GLSL type (`uint` -> [`U32`], `int` -> [`I32`],
//! `float` -> [`F32`], `uint a[N]` -> `[U32; N]`). Each kernel field of `Kernels` is a
//! `Kernel<ItsPush>` and [`Recorder::dispatch`](super::Recorder::dispatch) takes that struct,
//! so a push struct of another kernel, a missing or misspelt member, and a float where the
//! shader reads an integer are all compile errors. Reordering a block's members needs no change
//! where the ops fill it: they fill fields by name, and `words` lays them out at the offsets
//! reflected from the new block.
//!
//! A field holds either a literal or a graph parameter ([`Param`]), which the host changes
//! between replays: every value type converts from both.
//!
//! Kernels that an op picks among at run time (the convolution tiles, say) share one struct,
//! named in build.rs's `PUSH_FAMILIES`; the build checks that their blocks agree.

use super::recorder::{Param, Word};

/// What a push struct is to the recorder: its size as the shader declares it, and its
/// 32-bit words at the members' offsets (padding zero).
pub trait PushBlock {
    const BYTES: u32;
    fn words(&self) -> Vec<Word>;
}

/// The push type of a kernel that declares no push block.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPush;

impl PushBlock for NoPush {
    const BYTES: u32 = 0;

    fn words(&self) -> Vec<Word> {
        Vec::new()
    }
}

macro_rules! push_value {
    ($(#[$doc:meta])* $name:ident, $rust:ty, $to_word:path) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name(Word);

        impl From<$rust> for $name {
            fn from(v: $rust) -> Self {
                $name(Word::Lit($to_word(v)))
            }
        }

        /// The parameter's value is taken as this type's bits: set it with
        /// `Graph::set_param` (integers) or `Graph::set_param_f32` (floats).
        impl From<Param> for $name {
            fn from(p: Param) -> Self {
                $name(Word::Param(p))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name(Word::Lit(0))
            }
        }
    };
}

fn u32_bits(v: u32) -> u32 {
    v
}

fn i32_bits(v: i32) -> u32 {
    v as u32
}

push_value!(
    /// A `uint` member.
    U32,
    u32,
    u32_bits
);
push_value!(
    /// An `int` member.
    I32,
    i32,
    i32_bits
);
push_value!(
    /// A `float` member.
    F32,
    f32,
    f32::to_bits
);

impl From<bool> for U32 {
    /// 1 for true: what a shader's `uint` flag tests against 0.
    fn from(v: bool) -> Self {
        U32::from(u32::from(v))
    }
}

/// A `uint a[N]` member from host sizes, zero past their end. Panics when there are more than
/// N, the shader's bound (such as MAX_RANK).
pub fn u32s<const N: usize>(values: &[usize]) -> [U32; N] {
    assert!(
        values.len() <= N,
        "{} values for a push array of {N}",
        values.len()
    );
    let mut out = [U32::default(); N];
    for (o, &v) in out.iter_mut().zip(values) {
        *o = U32::from(v as u32);
    }
    out
}

include!(concat!(env!("OUT_DIR"), "/push.rs"));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vk::Recorder;

    fn lits(words: &[Word]) -> Vec<u32> {
        words
            .iter()
            .map(|w| match *w {
                Word::Lit(v) => v,
                Word::Param(p) => panic!("{p:?} where a literal was expected"),
            })
            .collect()
    }

    #[test]
    fn fields_land_at_their_members_offsets() {
        // binary.comp: n, op, rank, dims[6], magics[6], logs, a_strides[6], b_strides[6].
        let push = BinaryPush {
            n: 1u32.into(),
            op: 2u32.into(),
            rank: 3u32.into(),
            dims: u32s(&[10, 11]),
            magics: u32s(&[20]),
            logs: 30u32.into(),
            a_strides: u32s(&[40, 41, 42, 43, 44, 45]),
            b_strides: u32s(&[50]),
        };
        let w = lits(&push.words());
        assert_eq!(w.len() * 4, BinaryPush::BYTES as usize);
        assert_eq!(BinaryPush::BYTES, 112);
        assert_eq!(w[..3], [1, 2, 3]);
        assert_eq!(w[3..9], [10, 11, 0, 0, 0, 0]);
        assert_eq!(w[9..15], [20, 0, 0, 0, 0, 0]);
        assert_eq!(w[15], 30);
        assert_eq!(w[16..22], [40, 41, 42, 43, 44, 45]);
        assert_eq!(w[22..], [50, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn values_keep_their_bits() {
        let push = Conv2dWpackPush {
            C: 3u32.into(),
            O: 5u32.into(),
            O4: 2u32.into(),
            K: 3u32.into(),
            w_base: 8.into(),
            w_so: (-9).into(),
            w_sc: 1.into(),
            w_sky: (-3).into(),
            w_skx: (-1).into(),
            o4_magic: 6u32.into(),
            k_magic: 7u32.into(),
            logs: 33u32.into(),
        };
        let w = lits(&push.words());
        assert_eq!(
            w[4..],
            [8, -9i32 as u32, 1, -3i32 as u32, u32::MAX, 6, 7, 33]
        );
        let push = AxpbyPush {
            n: 4u32.into(),
            alpha: 0.5f32.into(),
            beta: (-2.25f32).into(),
        };
        assert_eq!(
            lits(&push.words()),
            [4, 0.5f32.to_bits(), (-2.25f32).to_bits()]
        );
        let flags = MatmulPush {
            M: 0u32.into(),
            N: 0u32.into(),
            K: 0u32.into(),
            ta: true.into(),
            tb: false.into(),
            alpha: 1.0f32.into(),
        };
        assert_eq!(lits(&flags.words())[3..5], [1, 0]);
    }

    #[test]
    fn a_parameter_field_stays_a_parameter() {
        let ctx = crate::testing::context();
        let mut rec = Recorder::new(&ctx);
        let step = rec.param(7);
        let push = RandomPush {
            n: 16u32.into(),
            seed: 1u32.into(),
            stream: 2u32.into(),
            step: step.into(),
            normal: true.into(),
        };
        let words = push.words();
        assert_eq!(words[3], Word::Param(step));
        assert_eq!(words[4], Word::Lit(1));
    }

    #[test]
    #[should_panic(expected = "7 values for a push array of 6")]
    fn a_push_array_refuses_more_values_than_it_holds() {
        let _: [U32; 6] = u32s(&[1; 7]);
    }
}
