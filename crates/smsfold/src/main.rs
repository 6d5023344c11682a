//! `smsfold`: the status-pipeline worker and the tools around it.

mod cli;
mod config_file;
mod demo;
mod kafka;
mod logging;
mod parse_error;
mod produce;
mod progress;
mod report;
mod run;
mod settings;
mod tail;
mod version;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command, CommonArgs, WorkerArgs};
use crate::settings::{ArgSources, Resolved};

/// The worker allocates and frees several small buffers per record. In
/// profiles glibc's allocator took a quarter of its CPU time, so the Rust
/// side allocates with mimalloc, whose per-thread free lists are cheaper.
/// The feature `system-allocator` keeps glibc's, for heap profilers that
/// trace `malloc` (scripts/heap-profile.sh).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let mut command = Cli::command();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let matches = match command.try_get_matches_from_mut(&args) {
        Ok(matches) => matches,
        Err(error) => {
            let variable = |name: &str| std::env::var(name).ok();
            match parse_error::from_environment(&command, &error, &args, variable) {
                Some(message) => {
                    eprintln!("error: {message}");
                    return ExitCode::from(2);
                }
                None => error.exit(),
            }
        }
    };
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let Some((name, subcommand_matches)) = matches.subcommand() else { unreachable!("clap requires a subcommand") };
    let Some(subcommand) = command.find_subcommand(name) else { unreachable!("clap matched subcommand {name}") };
    let sources = ArgSources { command: subcommand, matches: subcommand_matches };

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(cli.command, &sources));
    // A worker that did not stop in time may still hold a runtime thread;
    // do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command, sources: &ArgSources<'_>) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => {
            let resolved = resolve(&args.common, Some(&args.worker), sources)?;
            let config = resolved.worker_config()?;
            logging::init(resolved.log_format(), "info");
            run::run(config, &resolved).await
        }
        Command::Rebuild(args) => {
            let resolved = resolve(&args.common, Some(&args.worker), sources)?;
            let config = resolved.worker_config()?;
            logging::init(resolved.log_format(), "info");
            run::rebuild(config, &resolved).await
        }
        Command::Config(args) => {
            let resolved = resolve(&args.common, Some(&args.worker), sources)?;
            let config = resolved.worker_config()?;
            print!("{}", settings::render_toml(&resolved.rows(&config)));
            Ok(())
        }
        Command::Produce(args) => {
            let resolved = resolve(&args.common, None, sources)?;
            let config = resolved.worker_config()?;
            logging::init(resolved.log_format(), "warn");
            produce::produce(&args, &config).await
        }
        Command::Tail(args) => {
            let resolved = resolve(&args.common, None, sources)?;
            let config = resolved.worker_config()?;
            logging::init(resolved.log_format(), "warn");
            tail::tail(&args, &config).await
        }
        Command::Report(args) => {
            let resolved = resolve(&args.common, None, sources)?;
            let config = resolved.worker_config()?;
            logging::init(resolved.log_format(), "warn");
            report::report(&args, &config).await
        }
        Command::Demo(args) => {
            logging::init(args.log_format, "warn");
            demo::demo(args).await
        }
    }
}

fn resolve(common: &CommonArgs, worker: Option<&WorkerArgs>, sources: &ArgSources<'_>) -> anyhow::Result<Resolved> {
    // Variables whose name or value is not valid Unicode cannot be settings.
    let env =
        std::env::vars_os().filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)));
    settings::resolve(common, worker, sources, env)
}
