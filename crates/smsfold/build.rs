//! Records the build for `smsfold --version`: the git commit, the rustc
//! version and the target triple.
//!
//! The commit comes from `SMSFOLD_BUILD_COMMIT` when it is set (for builds
//! outside a git checkout, such as a container build), otherwise from
//! `git rev-parse --short HEAD`, and is "unknown" when neither works.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SMSFOLD_BUILD_COMMIT");
    let commit = std::env::var("SMSFOLD_BUILD_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SMSFOLD_BUILD_COMMIT={}", commit.trim());
    watch_git_head();

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let rustc_version = output_of(Command::new(rustc).arg("--version")).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SMSFOLD_BUILD_RUSTC={rustc_version}");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=SMSFOLD_BUILD_TARGET={target}");
}

/// Reruns this script when HEAD moves: a checkout changes `HEAD`, a commit
/// changes the branch's ref file or `packed-refs`. Only files that exist are
/// watched, because cargo reruns a script on every build while a watched
/// file is missing.
fn watch_git_head() {
    let Some(git_dir) = git(&["rev-parse", "--path-format=absolute", "--git-dir"]).map(PathBuf::from) else { return };
    let Some(common_dir) = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]).map(PathBuf::from) else {
        return;
    };
    let mut watched = vec![git_dir.join("HEAD"), common_dir.join("packed-refs")];
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(common_dir.join(reference));
    }
    for path in watched.iter().filter(|path| path.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn git(args: &[&str]) -> Option<String> {
    output_of(Command::new("git").args(args))
}

fn output_of(command: &mut Command) -> Option<String> {
    let output = command.output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}
