//! A deterministic generator of bulk SMS/MMS traffic for load tests: the
//! message and campaign events a platform publishes while it sends many
//! campaigns at once, with the delays, duplicates and reordering of real
//! traffic.
//!
//! The same [`WorkloadConfig`] (seed included) always yields the same events
//! in the same order, byte for byte once encoded. [`Generator`] streams them
//! in arrival order and holds only the events not yet due, so it can feed
//! runs of many millions of messages. [`encode`] writes them as the JSON
//! records of `smsfold produce` or as protobuf record values.
//!
//! NOTE: it generates no campaign cancellations, scheduled campaigns,
//! message cancellations or invalid records, so a load test with it does
//! not exercise those paths of smsfold.

pub mod config;
pub mod encode;
pub mod generator;
mod rng;

pub use config::{ConfigError, SegmentMix, WorkloadConfig};
pub use generator::{Event, Generated, Generator, Topic};

#[cfg(test)]
mod tests;
