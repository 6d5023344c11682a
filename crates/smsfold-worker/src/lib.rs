//! The smsfold worker: reads message and campaign events from Kafka, folds
//! them with `smsfold-domain`, and publishes status changes, internal records
//! and dead letters. See `worker` for the delivery guarantee and `processor`
//! for how records flow between topics.

pub mod config;
mod changelog_buffer;
mod batch;
mod committer;
mod context;
mod partition_map;
mod publisher;
mod restore;
pub mod rebuild;
pub mod replay;
pub mod dead_letter;
pub mod error;
pub mod http;
pub mod metrics;
pub mod output;
pub mod pipelines;
pub mod processor;
pub mod projections;
pub mod topics;
mod update_packs;
pub mod worker;

pub use config::{ConfigError, GroupProtocol, Guarantee, Topics, WorkerConfig};
pub use error::WorkerError;
pub use pipelines::{Pipelines, ProcessView};
pub use projections::Projections;
pub use worker::Worker;
