//! The version and build that `smsfold --version` prints, recorded by
//! `build.rs`.

/// The package version, for `-V`.
pub const SHORT: &str = env!("CARGO_PKG_VERSION");

/// The short git commit hash of the build, or "unknown".
pub const COMMIT: &str = env!("SMSFOLD_BUILD_COMMIT");

/// The version with the build details, for `--version`.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("SMSFOLD_BUILD_COMMIT"),
    "\nrustc: ",
    env!("SMSFOLD_BUILD_RUSTC"),
    "\ntarget: ",
    env!("SMSFOLD_BUILD_TARGET"),
);
