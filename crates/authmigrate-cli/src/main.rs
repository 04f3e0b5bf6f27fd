use std::process::ExitCode;

fn main() -> ExitCode {
    authmigrate_cli::run(std::env::args_os())
}
