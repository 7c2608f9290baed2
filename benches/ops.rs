//! Op throughput benchmarks; filled in with the convolution kernels.

fn main() {
    println!("no op benchmarks yet");
}
