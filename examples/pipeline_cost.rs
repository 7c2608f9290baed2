use vkgan::vk::{read_write, Buffer, Context, ContextOptions, Io, Recorder, Word};
fn rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}
fn main() {
    let ctx = Context::new(&ContextOptions::from_env(None).unwrap()).unwrap();
    let buf = Buffer::new(
        &ctx,
        if std::env::var("BIG").is_ok() {
            1 << 20
        } else {
            1 << 16
        },
    )
    .unwrap();
    let only: Option<String> = std::env::args().nth(1);
    for k in ctx.kernels().all() {
        if only.as_deref().is_some_and(|o| o != k.spec.name) {
            continue;
        }
        for io in [Io::Texel] {
            let spec = k.variant(io);
            let t = std::time::Instant::now();
            let r0 = rss();
            let mut rec = Recorder::new(&ctx);
            let b: Vec<_> = (0..spec.bindings).map(|_| read_write(&buf)).collect();
            let w: Vec<Word> = (0..spec.push_bytes / 4).map(|_| Word::from(0u32)).collect();
            rec.dispatch(k, &b, &w, [1, 1, 1]);
            drop(rec);
            println!(
                "{:24} {:?} {:8.2} s  rss {} MB -> {} MB",
                spec.name,
                io,
                t.elapsed().as_secs_f64(),
                r0 / 1024,
                rss() / 1024
            );
        }
    }
}
