//! The Vulkan runtime on a real device with validation on: a kernel against its CPU version,
//! barrier insertion, graph replay with new push data, and pooled allocation.

mod common;

use common::{assert_close, context, context_with_limits, values};
use vkgan::vk::push::{AxpbyPush, CopyPush, F32};
use vkgan::vk::{grid, read, write, Buffer, Context, Io, LimitsMode, Recorder, VkError};

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn axpby_cpu(alpha: f32, x: &[f32], beta: f32, y: &[f32]) -> Vec<f32> {
    x.iter().zip(y).map(|(a, b)| alpha * a + beta * b).collect()
}

fn record_axpby(
    rec: &mut Recorder,
    alpha: F32,
    x: &Buffer,
    beta: F32,
    y: &Buffer,
    out: &Buffer,
    n: usize,
) {
    let ctx = rec.context().clone();
    let k = &ctx.kernels().axpby;
    let groups = grid(n as u64, k.spec.local_size[0]);
    rec.dispatch(
        k,
        &[read(x), read(y), write(out)],
        &AxpbyPush {
            n: (n as u32).into(),
            alpha,
            beta,
        },
        groups,
    );
}

#[test]
fn axpby_matches_cpu_on_odd_sizes() {
    let ctx = context();
    // 4_200_007 needs more than 65535 workgroups of 64, so the grid spills into y.
    for n in [1usize, 7, 63, 65, 1009, 65_537, 4_200_007, 9_000_011] {
        let xs = values(n, 1);
        let ys = values(n, 2);
        let x = Buffer::from_f32(&ctx, &xs).unwrap();
        let y = Buffer::from_f32(&ctx, &ys).unwrap();
        let out = Buffer::new(&ctx, (n * 4) as u64).unwrap();
        let mut rec = Recorder::new(&ctx);
        record_axpby(
            &mut rec,
            1.5f32.into(),
            &x,
            F32::from(-0.25f32),
            &y,
            &out,
            n,
        );
        rec.run().unwrap();
        let got = out.read_f32(n).unwrap();
        assert_close(
            &got,
            &f64s(&axpby_cpu(1.5, &xs, -0.25, &ys)),
            1e-6,
            1e-6,
            &format!("n={n}"),
        );
    }
}

#[test]
fn barriers_only_on_real_hazards() {
    let ctx = context();
    let n = 1000;
    let a = Buffer::from_f32(&ctx, &values(n, 3)).unwrap();
    let b = Buffer::from_f32(&ctx, &values(n, 4)).unwrap();
    let c = Buffer::new(&ctx, 4 * n as u64).unwrap();
    let d = Buffer::new(&ctx, 4 * n as u64).unwrap();
    let e = Buffer::new(&ctx, 4 * n as u64).unwrap();
    let one = F32::from(1.0f32);

    // Independent: both read a and b, write different buffers.
    let mut rec = Recorder::new(&ctx);
    record_axpby(&mut rec, one, &a, one, &b, &c, n);
    record_axpby(&mut rec, one, &a, one, &b, &d, n);
    assert_eq!(
        rec.barrier_count(),
        0,
        "independent dispatches need no barrier"
    );

    // Read after write: e = c + a reads what the first dispatch wrote.
    record_axpby(&mut rec, one, &c, one, &a, &e, n);
    assert_eq!(
        rec.barrier_count(),
        1,
        "a read-after-write pair needs a barrier"
    );

    // Write after read: overwriting a, which the last dispatch read.
    record_axpby(&mut rec, one, &b, one, &b, &a, n);
    assert_eq!(
        rec.barrier_count(),
        2,
        "a write-after-read pair needs a barrier"
    );

    // Independent of everything since the last barrier: no new barrier.
    record_axpby(&mut rec, one, &b, one, &d, &c, n);
    assert_eq!(rec.barrier_count(), 2);

    // Write after write: d written again... reading c (written since the last barrier).
    record_axpby(&mut rec, one, &c, one, &b, &d, n);
    assert_eq!(
        rec.barrier_count(),
        3,
        "read of a buffer written since the last barrier"
    );

    let a0 = values(n, 3);
    let b0 = values(n, 4);
    rec.run().unwrap();
    let c1: Vec<f32> = b0.iter().zip(&b0).map(|(x, y)| x + y).collect(); // a after dispatch 4
    let d_after_2: Vec<f32> = a0.iter().zip(&b0).map(|(x, y)| x + y).collect();
    let c_final: Vec<f32> = b0.iter().zip(&d_after_2).map(|(x, y)| x + y).collect();
    let d_final: Vec<f32> = c_final.iter().zip(&b0).map(|(x, y)| x + y).collect();
    let e_final: Vec<f32> = d_after_2.iter().zip(&a0).map(|(x, y)| x + y).collect();
    assert_close(&a.read_f32(n).unwrap(), &f64s(&c1), 1e-6, 1e-6, "a");
    assert_close(&c.read_f32(n).unwrap(), &f64s(&c_final), 1e-6, 1e-6, "c");
    assert_close(&d.read_f32(n).unwrap(), &f64s(&d_final), 1e-6, 1e-6, "d");
    assert_close(&e.read_f32(n).unwrap(), &f64s(&e_final), 1e-6, 1e-6, "e");
}

#[test]
fn graph_replays_with_new_push_data() {
    let ctx = context();
    let n = 777;
    let xs = values(n, 5);
    let ys = values(n, 6);
    let x = Buffer::from_f32(&ctx, &xs).unwrap();
    let y = Buffer::from_f32(&ctx, &ys).unwrap();
    let t = Buffer::new(&ctx, 4 * n as u64).unwrap();
    let out = Buffer::new(&ctx, 4 * n as u64).unwrap();
    let mut rec = Recorder::new(&ctx);
    let alpha = rec.param(0);
    let beta = rec.param(0);
    // t = alpha x + y; out = beta t + x: two dependent dispatches per replay.
    record_axpby(&mut rec, alpha.into(), &x, 1.0f32.into(), &y, &t, n);
    record_axpby(&mut rec, beta.into(), &t, 1.0f32.into(), &x, &out, n);
    let mut graph = rec.finish().unwrap();
    for step in 0..100 {
        let (a, b) = (step as f32 * 0.1 - 3.0, 1.0 / (1.0 + step as f32));
        graph.set_param_f32(alpha, a);
        graph.set_param_f32(beta, b);
        graph.run().unwrap();
        let t_cpu = axpby_cpu(a, &xs, 1.0, &ys);
        let want = axpby_cpu(b, &t_cpu, 1.0, &xs);
        assert_close(
            &out.read_f32(n).unwrap(),
            &f64s(&want),
            1e-5,
            1e-5,
            &format!("replay {step}"),
        );
    }
}

#[test]
fn replayed_graph_allocates_nothing() {
    let ctx = context();
    let n = 4099;
    let build = |ctx: &Context| {
        let x = Buffer::from_f32(ctx, &values(n, 7)).unwrap();
        let y = Buffer::from_f32(ctx, &values(n, 8)).unwrap();
        let out = Buffer::new(ctx, 4 * n as u64).unwrap();
        let mut rec = Recorder::new(ctx);
        let alpha = rec.param(0);
        record_axpby(&mut rec, alpha.into(), &x, 1.0f32.into(), &y, &out, n);
        (rec.finish().unwrap(), alpha, out)
    };
    let (mut graph, alpha, out) = build(&ctx);
    graph.run().unwrap();
    let before = ctx.stats();
    for step in 0..100 {
        graph.set_param_f32(alpha, step as f32);
        graph.run().unwrap();
    }
    let after = ctx.stats();
    assert_eq!(
        after.buffers_created, before.buffers_created,
        "replay created buffers"
    );
    assert_eq!(
        after.descriptor_sets, before.descriptor_sets,
        "replay allocated descriptors"
    );
    assert_eq!(after.submissions, before.submissions + 100);
    drop((graph, out));

    // The same shapes recorded again come out of the pool.
    let before = ctx.stats();
    let (mut graph, _, _) = build(&ctx);
    graph.run().unwrap();
    assert_eq!(
        ctx.stats().buffers_created,
        before.buffers_created,
        "pool not reused"
    );
}

#[test]
fn profiled_graph_times_each_kernel() {
    let ctx = context();
    ctx.check_timestamps()
        .expect("the test device (lavapipe) writes timestamps");
    let n = 100_003;
    let x = Buffer::from_f32(&ctx, &values(n, 9)).unwrap();
    let y = Buffer::new(&ctx, 4 * n as u64).unwrap();
    let z = Buffer::new(&ctx, 4 * n as u64).unwrap();
    let mut rec = Recorder::new(&ctx);
    let groups = grid(n as u64, 64);
    let k = ctx.kernels();
    rec.dispatch(
        &k.copy,
        &[read(&x), write(&y)],
        &CopyPush {
            n: (n as u32).into(),
        },
        groups,
    );
    record_axpby(&mut rec, 2.0f32.into(), &y, 1.0f32.into(), &x, &z, n);
    rec.dispatch(
        &k.copy,
        &[read(&z), write(&y)],
        &CopyPush {
            n: (n as u32).into(),
        },
        groups,
    );
    let mut graph = rec.finish().unwrap();
    assert!(graph.profile().is_empty(), "profiling is opt-in");
    graph.set_profiling(true).unwrap();
    graph.run().unwrap();
    graph.reset_profile();
    let runs = 3;
    for _ in 0..runs {
        graph.run().unwrap();
    }
    let profile = graph.profile();
    let mut names: Vec<&str> = profile.iter().map(|t| t.name).collect();
    names.sort();
    assert_eq!(names, ["axpby", "copy"], "{profile:?}");
    for t in &profile {
        assert!(t.ns.is_finite() && t.ns >= 0.0, "{profile:?}");
        let per_run = if t.name == "copy" { 2 } else { 1 };
        assert_eq!(t.calls, per_run * runs, "{profile:?}");
    }
    assert!(
        profile.windows(2).all(|w| w[0].ns >= w[1].ns),
        "sorted longest first: {profile:?}"
    );
    // Results are unchanged by the timestamps.
    let want: Vec<f64> = values(n, 9).iter().map(|&v| 3.0 * v as f64).collect();
    assert_close(&y.read_f32(n).unwrap(), &want, 1e-6, 1e-6, "profiled run");
    graph.set_profiling(false).unwrap();
    graph.run().unwrap();
    assert!(graph.profile().is_empty());
}

#[test]
fn texel_bindings_are_reflected_and_share_views() {
    let ctx = context();
    let k = ctx.kernels();
    assert_eq!(
        k.axpby.spec.texels,
        &[] as &[(u32, u32)],
        "axpby uses storage buffers"
    );
    assert_eq!(k.copy.spec.texels, &[(0, 1), (1, 1)]);
    assert_eq!(k.matmul.spec.texels, &[(0, 4), (1, 4), (2, 1)]);
    // Three copies over four buffers: x is read twice, y written then read.
    let n = 1001;
    let x = Buffer::from_f32(&ctx, &values(n, 4)).unwrap();
    let [y, z, w] = [0; 3].map(|_| Buffer::new(&ctx, 4 * n as u64).unwrap());
    let mut rec = Recorder::new(&ctx);
    let groups = grid(n as u64, 64);
    for (src, dst) in [(&x, &y), (&y, &z), (&x, &w)] {
        rec.dispatch(
            &k.copy,
            &[read(src), write(dst)],
            &CopyPush {
                n: (n as u32).into(),
            },
            groups,
        );
    }
    // A storage-buffer kernel in the same graph.
    record_axpby(&mut rec, 1.0f32.into(), &z, 1.0f32.into(), &w, &y, n);
    let mut graph = rec.finish().unwrap();
    assert_eq!(graph.view_count(), 4);
    graph.run().unwrap();
    let want: Vec<f64> = values(n, 4).iter().map(|&v| 2.0 * v as f64).collect();
    assert_close(
        &y.read_f32(n).unwrap(),
        &want,
        1e-6,
        1e-6,
        "copies then sum",
    );
}

/// Copies `n` values through the copy kernel (texel bindings); the I/O build it ran.
fn copy_through(ctx: &Context, n: usize) -> Io {
    let xs = values(n, 9);
    let x = Buffer::from_f32(ctx, &xs).unwrap();
    let y = Buffer::new(ctx, 4 * n as u64).unwrap();
    let mut rec = Recorder::new(ctx);
    rec.dispatch(
        &ctx.kernels().copy,
        &[read(&x), write(&y)],
        &CopyPush {
            n: (n as u32).into(),
        },
        grid(n as u64, 64),
    );
    let mut graph = rec.finish().unwrap();
    graph.run().unwrap();
    assert_close(
        &y.read_f32(n).unwrap(),
        &f64s(&xs),
        0.0,
        0.0,
        &format!("copy n={n}"),
    );
    graph.kernel_io()[0]
}

#[test]
fn tensors_past_a_texel_view_take_the_storage_build() {
    for mode in [LimitsMode::Device, LimitsMode::Minimum] {
        let ctx = context_with_limits(mode);
        let texel_floats = ctx.limits().texel_bytes() / 4;
        if mode == LimitsMode::Minimum {
            assert_eq!(texel_floats, 65536);
        }
        // One size class below the view limit, and one past it.
        for n in [65536 - 64, 65536 + 64, 300_007] {
            let want = if (n as u64).next_multiple_of(64) <= texel_floats {
                Io::Texel
            } else {
                Io::Storage
            };
            assert_eq!(copy_through(&ctx, n), want, "n = {n} under {mode:?} limits");
        }
    }
}

#[test]
fn a_dispatch_past_a_limit_is_an_error_naming_kernel_tensor_and_limit() {
    let ctx = context_with_limits(LimitsMode::Minimum);
    let k = &ctx.kernels().copy;
    let small = Buffer::new(&ctx, 1024).unwrap();
    let range = ctx.limits().max_storage_buffer_range as u64;
    assert_eq!(range, 1 << 27);
    let big = Buffer::new(&ctx, range + 256).unwrap();
    let mut rec = Recorder::new(&ctx);
    rec.dispatch(
        k,
        &[read(&big), write(&small)],
        &CopyPush { n: 256u32.into() },
        [4, 1, 1],
    );
    let err = rec
        .finish()
        .err()
        .expect("a binding past maxStorageBufferRange");
    assert!(matches!(err, VkError::PastLimit { .. }), "{err:?}");
    let text = err.to_string();
    for part in [
        "kernel copy",
        "`src`",
        "134217984 bytes",
        "maxStorageBufferRange of 134217728",
        "VKGAN_LIMITS=minimum",
    ] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }

    let max_x = ctx.limits().max_workgroup_count[0];
    let mut rec = Recorder::new(&ctx);
    rec.dispatch(
        k,
        &[read(&small), write(&small)],
        &CopyPush { n: 256u32.into() },
        [max_x + 1, 1, 1],
    );
    let text = rec
        .finish()
        .err()
        .expect("a grid past the limit")
        .to_string();
    assert!(
        text.contains("kernel copy")
            && text.contains(&format!("maxComputeWorkGroupCount[0] of {max_x}")),
        "{text}"
    );
}

#[test]
fn memory_counters_track_live_and_peak_bytes() {
    let ctx = context();
    let start = ctx.stats();
    let a = Buffer::new(&ctx, 1000).unwrap();
    let class = Buffer::size_class(1000);
    let s = ctx.stats();
    assert_eq!(s.in_use_bytes, start.in_use_bytes + class);
    assert_eq!(s.live_bytes, start.live_bytes + class);
    drop(a);
    let s = ctx.stats();
    // Back in the pool: no longer in use, still allocated.
    assert_eq!(s.in_use_bytes, start.in_use_bytes);
    assert_eq!(s.live_bytes, start.live_bytes + class);
    assert!(s.peak_in_use_bytes >= start.in_use_bytes + class);
    let b = Buffer::new(&ctx, 1000).unwrap();
    assert_eq!(ctx.stats().live_bytes, s.live_bytes, "pooled buffer reused");
    drop(b);
    assert!(ctx.stats().peak_bytes >= ctx.stats().live_bytes);
}
