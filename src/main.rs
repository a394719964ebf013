//! The `ficus` command. Errors a user can cause end here as one sentence and exit status 1.

use std::process::ExitCode;

use clap::Parser;
use ficus::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => ficus::serve::run(*args),
        Command::Routes(args) => ficus::inspect::routes(args),
        Command::Check(args) => ficus::inspect::check(args),
        Command::Diff(args) => ficus::diff::run(args),
        Command::Reload(args) => ficus::state::reload(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ficus: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
