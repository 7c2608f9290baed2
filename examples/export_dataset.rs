//! Writes the training images exactly as vkgan sees them, one PNG per image, so that another
//! trainer (the PyTorch reference, `scripts/torch_reference_train.py`) uses the same pixels.
//!
//! ```sh
//! cargo run --release --example export_dataset -- SIZE OUT [DATA_DIR]
//! ```
//! `SIZE` is the training image size (16 for `--preset quick`); without `DATA_DIR` the
//! embedded emoji set is exported. `OUT/00000.png`, ... are the dataset's images in its order
//! (see `Dataset::save_pngs`); `vkgan train --data OUT` at the same size trains on the same
//! bytes.

use std::path::PathBuf;
use vkgan::data::{Dataset, Source};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(2..=3).contains(&args.len()) {
        anyhow::bail!("usage: export_dataset SIZE OUT [DATA_DIR]");
    }
    let size: usize = args[0]
        .parse()
        .map_err(|_| anyhow::anyhow!("SIZE must be a number, got `{}`", args[0]))?;
    let out = PathBuf::from(&args[1]);
    let source = match args.get(2) {
        Some(dir) => Source::Dir(PathBuf::from(dir)),
        None => Source::Emoji,
    };
    let dataset = Dataset::open(&source, size)?;
    let paths = dataset.save_pngs(&out)?;
    eprintln!(
        "wrote {} {size}x{size} images to {}",
        paths.len(),
        out.display()
    );
    Ok(())
}
