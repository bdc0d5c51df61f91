//! The `webapp-bench` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use webapp_bench::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().execute().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("webapp-bench: {}", webapp_operator::cli::error_chain(&error));
            ExitCode::FAILURE
        }
    }
}
