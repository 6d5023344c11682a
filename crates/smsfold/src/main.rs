//! `smsfold`: the status-pipeline worker and the tools around it.

mod cli;
mod demo;
mod logging;
mod run;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => {
                logging::init(args.log_format, "info");
                run::run(args).await
            }
            Command::Rebuild(args) => {
                logging::init(args.log_format, "info");
                run::rebuild(args).await
            }
            Command::Demo(args) => {
                logging::init(args.log_format, "warn");
                demo::demo(args).await
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
