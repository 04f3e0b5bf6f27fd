//! One module per command.

mod generate;
mod validate;

use crate::cli::Command;
use crate::output::Output;
use crate::Status;

/// Runs a parsed command.
pub(crate) fn dispatch(command: Command, out: &Output) -> anyhow::Result<Status> {
    match command {
        Command::Generate(args) => generate::run(args, out),
        Command::Validate(args) => validate::run(args, out),
    }
}
