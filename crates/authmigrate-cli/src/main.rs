use std::process::ExitCode;

// Parsing and mapping millions of JSON records is allocation-bound; mimalloc roughly
// halves that cost against the system allocator (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    authmigrate_cli::run(std::env::args_os())
}
