//! Values of `SMSFOLD_*` variables that clap cannot parse, reported by
//! their source.
//!
//! clap reports such a value under its flag (`invalid value '-1' for
//! '--pipelines <COUNT>'`), which misleads when only the variable was set.
//! This names the setting and the variable instead, as the other
//! configuration errors do.

use std::error::Error as _;
use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::settings::TOPIC_ARGS;

/// Returns the message for `error` when a variable, not a flag, gave the
/// value clap rejected, else `None`. `args` are the program's arguments and
/// `env` reads a variable.
pub fn from_environment(
    command: &clap::Command,
    error: &clap::Error,
    args: &[OsString],
    env: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    if !matches!(error.kind(), ErrorKind::InvalidValue | ErrorKind::ValueValidation) {
        return None;
    }
    let Some(ContextValue::String(invalid_arg)) = error.get(ContextKind::InvalidArg) else { return None };
    let Some(ContextValue::String(value)) = error.get(ContextKind::InvalidValue) else { return None };

    // A flag given on the command line is named correctly already.
    let long = invalid_arg.strip_prefix("--")?.split([' ', '=']).next()?;
    let flag = format!("--{long}");
    let flag_given = args.iter().filter_map(|arg| arg.to_str()).any(|arg| {
        arg == flag || arg.strip_prefix(flag.as_str()).is_some_and(|rest| rest.starts_with('='))
    });
    if flag_given {
        return None;
    }

    // The first argument that names a subcommand is the one that ran.
    let subcommand = args.iter().skip(1).find_map(|arg| command.find_subcommand(arg.to_str()?))?;
    let arg = subcommand.get_arguments().find(|arg| arg.get_long() == Some(long))?;
    let subcommand = subcommand.get_name();
    let variable = arg.get_env()?.to_str()?;
    if env(variable).as_deref() != Some(value.as_str()) {
        return None;
    }

    let id = arg.get_id().as_str();
    let setting = TOPIC_ARGS.iter().find(|(arg_id, _)| *arg_id == id).map_or(id, |(_, setting)| setting);
    let reason = match (error.kind(), error.get(ContextKind::ValidValue)) {
        (ErrorKind::InvalidValue, Some(ContextValue::Strings(valid))) => format!("expected one of {}", valid.join(", ")),
        _ => error.source().map_or_else(|| "it cannot be parsed".to_owned(), ToString::to_string),
    };
    Some(format!(
        "invalid setting {setting} (from {variable}): {value:?} is not valid: {reason}; \
         set {variable} to a value that `smsfold {subcommand} --help` describes under {flag}"
    ))
}
