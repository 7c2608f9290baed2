//! The commands that use the networks outside the training loop: loading a generator from a
//! checkpoint (`load`), writing images per seed (`generate`), the style-mixing figure (`mix`),
//! animated walks between seeds (`interpolate`), MS-SWD against real images (`measure`), and
//! timing the training step (`bench`). They read
//! the checkpoint layout and programs of [`crate::train`]; nothing here is used by training.

pub mod bench;
pub mod generate;
pub mod interpolate;
pub mod load;
pub mod measure;
pub mod mix;
pub mod project;
