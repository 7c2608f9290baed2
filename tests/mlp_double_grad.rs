//! End to end through the dense layers, second order: a 3-layer MLP (equalized linear layers,
//! leaky relu 0.2, input rows L2-normalised as the mapping network does), f(x) = sum of its
//! [B,1] outputs; g = df/dx kept differentiable; L = ||g||²; dL/dW for every weight. The
//! device must match the CPU (`eval_cpu`), and the CPU must match f64 central finite
//! differences of L, itself evaluated through the tape on the CPU as a function of the weights.

mod common;

use common::{assert_close, context};
use vkgan::autograd::{Tape, Var};
use vkgan::ops;
use vkgan::tensor::{CpuTensor, Tensor};
use vkgan::testing::random;

struct Mlp {
    tape: Tape,
    x: Var,
    weights: Vec<Var>,
    biases: Vec<Var>,
    loss: Var,
    weight_grads: Vec<Var>,
}

/// The tape for input [b, widths[0]] and layers widths[i] -> widths[i+1], the last one 1 wide.
fn build(b: usize, widths: &[usize]) -> Mlp {
    let mut t = Tape::new();
    let x = t.leaf(&[b, widths[0]], true);
    let mut h = ops::l2_normalize_rows(&mut t, x);
    let (mut weights, mut biases) = (Vec::new(), Vec::new());
    for (i, w) in widths.windows(2).enumerate() {
        let wv = t.leaf(&[w[1], w[0]], true);
        let bv = t.leaf(&[w[1]], true);
        weights.push(wv);
        biases.push(bv);
        h = ops::equalized_linear(&mut t, h, wv, Some(bv));
        if i + 2 < widths.len() {
            h = ops::leaky_relu(&mut t, h, 0.2);
        }
    }
    let f = ops::sum_all(&mut t, h);
    let g = t.grad(&[f], &[x], None, true)[0].expect("f depends on x");
    let g2 = ops::square(&mut t, g);
    let loss = ops::sum_all(&mut t, g2);
    let mut wrt = weights.clone();
    wrt.extend(&biases);
    let grads = t.grad(&[loss], &wrt, None, false);
    // g depends on the biases only through the leaky relus' masks, whose derivative is zero
    // almost everywhere: the tape gives them no gradient at all.
    for (k, gb) in grads[weights.len()..].iter().enumerate() {
        assert!(gb.is_none(), "bias {k} got a gradient");
    }
    let weight_grads = grads[..weights.len()]
        .iter()
        .map(|g| g.expect("every weight shapes g"))
        .collect();
    Mlp {
        tape: t,
        x,
        weights,
        biases,
        loss,
        weight_grads,
    }
}

fn check(b: usize, widths: &[usize]) {
    let ctx = context();
    let m = build(b, widths);
    let t = &m.tape;
    let mut values: Vec<(Var, CpuTensor)> = vec![(m.x, random(t.shape(m.x), 1))];
    for (k, (&w, &bias)) in m.weights.iter().zip(&m.biases).enumerate() {
        values.push((w, random(t.shape(w), 10 + k as u64)));
        values.push((bias, random(t.shape(bias), 20 + k as u64).map(|v| v * 0.25)));
    }
    let cpu_leaves: Vec<(Var, &CpuTensor)> = values.iter().map(|(v, c)| (*v, c)).collect();
    let dev_tensors: Vec<(Var, Tensor)> = values
        .iter()
        .map(|(v, c)| (*v, Tensor::from_cpu(&ctx, c).unwrap()))
        .collect();
    let dev_leaves: Vec<(Var, &Tensor)> = dev_tensors.iter().map(|(v, d)| (*v, d)).collect();

    let mut outputs = vec![m.loss];
    outputs.extend(&m.weight_grads);
    let dev = t.eval(&ctx, &outputs, &dev_leaves).unwrap();
    let cpu = t.eval_cpu(&outputs, &cpu_leaves);
    let label = format!("mlp b={b} widths={widths:?}");
    assert!(cpu[0].data[0] > 0.0, "{label}: L is trivially zero");
    assert_close(&dev[0], &cpu[0].data, 1e-5, 1e-4, &format!("{label}: L"));
    for k in 0..m.weights.len() {
        assert_close(
            &dev[k + 1],
            &cpu[k + 1].data,
            1e-4,
            1e-3,
            &format!("{label}: device dL/dW{k}"),
        );
    }

    // Central differences of L in every weight element.
    let loss_at = |slot: usize, j: usize, delta: f64| -> f64 {
        let mut moved = values[slot].1.clone();
        moved.data[j] += delta;
        let leaves: Vec<(Var, &CpuTensor)> = values
            .iter()
            .enumerate()
            .map(|(i, (v, c))| (*v, if i == slot { &moved } else { c }))
            .collect();
        t.eval_cpu(&[m.loss], &leaves)[0].data[0]
    };
    for (k, &w) in m.weights.iter().enumerate() {
        let slot = values.iter().position(|(v, _)| *v == w).unwrap();
        let exact = &cpu[k + 1].data;
        let scale = exact.iter().fold(1.0f64, |s, v| s.max(v.abs()));
        for (j, &e) in exact.iter().enumerate() {
            let eps = 1e-6;
            let numeric = (loss_at(slot, j, eps) - loss_at(slot, j, -eps)) / (2.0 * eps);
            assert!(
                (numeric - e).abs() <= 1e-6 * scale + 1e-6 * numeric.abs(),
                "{label}: dL/dW{k} element {j}: tape {e}, finite differences {numeric}"
            );
        }
    }
}

#[test]
fn odd_widths_through_the_small_kernel() {
    check(5, &[13, 7, 3, 1]);
}

#[test]
fn multiples_of_four_through_the_blocked_kernel() {
    check(8, &[16, 20, 12, 1]);
}
