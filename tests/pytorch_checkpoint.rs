//! A checkpoint written by the PyTorch reference (`safetensors.torch.save_file` of the three
//! state dicts under `mapping_network.` / `generator.` / `discriminator.`) loads unchanged:
//! its sizes are inferred from the tensor shapes and every generator tensor arrives intact
//! (that the same parameters give the reference's images is the golden test's job).

mod common;

use safetensors::{serialize_to_file, tensor::TensorView, Dtype, SafeTensors};
use std::collections::HashMap;
use vkgan::infer::load::{infer_config, load_generator};
use vkgan::nn::{parameter_specs, ModelConfig};
use vkgan::persist::checkpoint;

#[test]
fn reference_state_dicts_load_and_match_the_golden_parameters() {
    let golden =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/tiny16.safetensors");
    let bytes = std::fs::read(&golden).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    // The state dicts exactly as PyTorch would save them: `param.` stripped, no metadata.
    let mut views = HashMap::new();
    for (name, view) in file.tensors() {
        if let Some(stripped) = name.strip_prefix("param.") {
            let v = TensorView::new(Dtype::F32, view.shape().to_vec(), view.data()).unwrap();
            views.insert(stripped.to_string(), v);
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("vkgan-pt-")
        .tempdir()
        .unwrap();
    let path = dir.path().join("reference.safetensors");
    serialize_to_file(views, &None, &path).unwrap();

    let ck = checkpoint::read(&path).unwrap();
    let cfg = infer_config(&ck).unwrap();
    let expected = ModelConfig {
        image_size: 16,
        d_latent: 32,
        mapping_layers: 2,
        g_features: 8,
        g_max_features: 32,
        d_features: 8,
        d_max_features: 32,
    };
    // Feature counts are inferred up to equivalence (the same per-block features).
    assert_eq!(cfg.image_size, expected.image_size);
    assert_eq!(cfg.d_latent, expected.d_latent);
    assert_eq!(cfg.mapping_layers, expected.mapping_layers);
    assert_eq!(cfg.generator_features(), expected.generator_features());
    assert_eq!(
        cfg.discriminator_features(),
        expected.discriminator_features()
    );

    let ctx = common::context();
    let gen = load_generator(&ctx, &path).unwrap();
    assert!(!gen.used_ema, "a reference export has no EMA copy");
    for spec in parameter_specs(&cfg) {
        if spec.name.starts_with("discriminator.") {
            continue;
        }
        let want = file.tensor(&format!("param.{}", spec.name)).unwrap();
        let want: Vec<f32> = want
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(
            gen.store.get(&spec.name).to_vec().unwrap(),
            want,
            "{}",
            spec.name
        );
    }
}
