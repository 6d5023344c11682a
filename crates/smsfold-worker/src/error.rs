//! Errors that stop the worker.

use rdkafka::error::KafkaError;

use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("Kafka client error: {0}")]
    Kafka(KafkaError),
    #[error("{0}")]
    Topic(String),
    /// An output could not be delivered even after the producer's retries;
    /// the batch's offsets were not committed, so a restart redoes it.
    #[error("could not deliver a record to topic {topic:?}: {error}")]
    Delivery { topic: String, error: KafkaError },
    /// A pipeline could not start or ended without a result.
    #[error("a pipeline failed: {0}")]
    Pipeline(String),
    #[error("HTTP server on {addr} failed: {error}")]
    Http { addr: std::net::SocketAddr, error: std::io::Error },
}
