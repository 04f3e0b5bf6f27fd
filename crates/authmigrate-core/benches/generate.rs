//! Generation throughput: users per second at bcrypt cost 10, on one thread and on
//! every core, and the scaling ratio (target: at least 0.9 × cores).
//!
//! Run: `cargo bench -p authmigrate-core --bench generate` (set `GENERATE_BENCH_USERS`
//! to change the sample size, default 200). Figures go to `docs/benchmarks.md`.

use std::time::Instant;

use authmigrate_core::generate::{GenerateOptions, generate};

fn rate(threads: usize, users: u64) -> f64 {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let options = GenerateOptions {
        count: users,
        seed: Some(1),
        ..Default::default()
    };
    let start = Instant::now();
    let mut n = 0u64;
    pool.install(|| {
        generate(&options, |_| {
            n += 1;
            Ok(())
        })
    })
    .expect("generate");
    assert_eq!(n, users);
    users as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful: run tiny.
    let quick =
        std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let users: u64 = std::env::var("GENERATE_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 4 } else { 200 });
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let _warm = rate(1, 2);
    let one = rate(1, users);
    let all = rate(cores, users * cores as u64);
    println!("generate: bcrypt cost 10, {users} users per thread");
    println!(
        "  1 thread : {one:8.1} users/s ({:.1} ms/user)",
        1000.0 / one
    );
    println!("  {cores} threads: {all:8.1} users/s");
    println!(
        "  scaling  : {:.2}x on {cores} cores ({:.2} of ideal; target >= 0.90)",
        all / one,
        all / one / cores as f64
    );
}
