//! The `webapp-operator` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use webapp_operator::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.execute().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("webapp-operator: {}", webapp_operator::cli::error_chain(&error));
            ExitCode::FAILURE
        }
    }
}
