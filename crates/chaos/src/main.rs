//! The `webapp-chaos` binary: parses the command line and hands over to the library.
//! Exit status 0: every invariant held; 1: one failed; 2: the run could not go on.

use std::process::ExitCode;

use clap::Parser;
use webapp_chaos::cli::{Cli, describe};

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().execute().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("webapp-chaos: {}", describe(&error));
            ExitCode::from(2)
        }
    }
}
