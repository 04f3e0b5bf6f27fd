//! One module per command.

mod convert;
mod create;
mod delete;
mod delta;
mod demo;
mod demo_tenant;
mod export;
mod hashes;
mod map;
mod mfa_join;
mod migrate;
mod tenant;
mod tenant_auth0;

pub(crate) use map::authgear_options;
mod generate;
mod import;
mod sandbox;
mod validate;
mod verify;

use crate::Status;
use crate::cli::Command;
use crate::output::Output;

/// Runs a parsed command.
pub(crate) fn dispatch(command: Command, out: &Output) -> anyhow::Result<Status> {
    match command {
        Command::Generate(args) => generate::run(args, out),
        Command::Validate(args) => validate::run(args, out),
        Command::Import(args) => import::run(args, out),
        Command::Export(args) => export::run(args, out),
        Command::Convert(args) => convert::run(args, out),
        Command::Migrate(args) => migrate::run(args, out),
        Command::Delete(args) => delete::run(args, out),
        Command::Verify(args) => verify::run(args, out),
        Command::Demo(args) => demo::run(args, out),
        Command::Sandbox(args) => sandbox::run(args, out),
    }
}
