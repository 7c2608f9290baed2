//! What a run shows a person, written from host data (`Vec<f32>`, names, numbers) and never
//! touching Vulkan, so it is tested without a device: image files and grids (`images`),
//! animated GIF/APNG files and frame folders (`animation`), line plots (`plot`, with its bitmap
//! `font`) and the JSON-lines log of a run's values (`run_log`, the file `metrics.jsonl`).

pub mod animation;
pub mod images;
pub mod plot;
pub mod run_log;

mod font;
