//! The worker's producer: hands outputs to librdkafka without a future per
//! record, counts their acknowledgements, and remembers the first failed
//! delivery, so that a commit can wait for the whole batch at once.
//!
//! A polling thread of the producer serves the delivery reports. A commit
//! waits here until every record sent so far is acknowledged, and only then
//! calls librdkafka's commit. rdkafka's own flush before a transaction
//! commit polls in steps of up to 100 ms, which could hold a batch that long.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};

use crate::output::Output;

/// How long a full producer queue is waited on before sending again.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(1);

/// How often a thread waiting for acknowledgements reads the count.
const SETTLE_POLL: Duration = Duration::from_micros(100);

/// Delivery bookkeeping shared by the sender and librdkafka's thread.
#[derive(Debug, Default)]
pub struct Deliveries {
    /// Records handed to librdkafka.
    sent: AtomicU64,
    /// Records whose delivery report was served, delivered or not.
    reported: AtomicU64,
    /// The first delivery that failed since the last [`reset`].
    failure: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, (): ()) {
        if let Err((error, record)) = result {
            let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
            if failure.is_none() {
                *failure = Some(format!("delivery to {} failed: {error}", record.topic()));
            }
        }
        self.reported.fetch_add(1, Ordering::AcqRel);
    }
}

/// The producer of a worker's outputs.
pub type Publisher = ThreadedProducer<Deliveries>;

/// Creates the producer from its configuration.
pub fn create(config: &ClientConfig) -> Result<Publisher, KafkaError> {
    config.create_with_context(Deliveries::default())
}

/// Hands one output to the producer, waiting while its queue is full.
/// Returns the error when librdkafka refuses the record for another reason.
pub fn send(producer: &Publisher, mut output: Output) -> Result<(), (String, KafkaError)> {
    let headers = output.headers.take();
    let mut record = BaseRecord::<[u8], [u8]>::to(&output.topic);
    if let Some(key) = &output.key {
        record = record.key(key.as_slice());
    }
    if let Some(payload) = &output.payload {
        record = record.payload(payload.as_slice());
    }
    if let Some(partition) = output.partition {
        record = record.partition(partition);
    }
    if let Some(headers) = headers {
        record = record.headers(headers);
    }
    let deliveries = producer.context();
    // Counted before the send, so that a report served at once is never
    // ahead of the count of records sent.
    deliveries.sent.fetch_add(1, Ordering::AcqRel);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                record = returned;
                std::thread::sleep(QUEUE_FULL_BACKOFF);
            }
            Err((error, _)) => {
                deliveries.sent.fetch_sub(1, Ordering::AcqRel);
                return Err((output.topic.to_string(), error));
            }
        }
    }
}

/// Waits until every record sent so far is acknowledged or failed, for at
/// most `timeout`, then returns the first failed delivery since the last
/// reset, if any. Records still lingering in the producer's queue are sent
/// at once. Blocks the calling thread.
pub fn settle_blocking(producer: &Publisher, timeout: Duration) -> Result<(), String> {
    wait_reported(producer, timeout)?;
    take_failure(producer)
}

/// Waits until every record sent so far has its delivery report, for at
/// most `timeout`. Blocks the calling thread.
pub fn wait_reported(producer: &Publisher, timeout: Duration) -> Result<(), String> {
    let deliveries = producer.context();
    let deadline = Instant::now() + timeout;
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: the producer, and with it the native handle, outlives the
    // call. librdkafka's flush sends queued records without waiting out
    // `linger.ms` and returns once every record is acknowledged and its
    // report taken by the producer's polling thread. rdkafka's own flush
    // polls in steps of up to 100 ms instead, competing with that thread.
    unsafe { rdkafka::bindings::rd_kafka_flush(producer.client().native_ptr(), timeout_ms) };
    while deliveries.reported.load(Ordering::Acquire) < deliveries.sent.load(Ordering::Acquire) {
        if Instant::now() >= deadline {
            let missing = deliveries.sent.load(Ordering::Acquire).saturating_sub(deliveries.reported.load(Ordering::Acquire));
            return Err(format!("the broker did not acknowledge {missing} records within {} s", timeout.as_secs()));
        }
        std::thread::sleep(SETTLE_POLL);
    }
    Ok(())
}

/// Returns the first failed delivery since the last call, and clears it.
pub fn take_failure(producer: &Publisher) -> Result<(), String> {
    match producer.context().failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}

/// Clears a failed delivery of an aborted batch.
pub fn reset(producer: &Publisher) {
    let _ = take_failure(producer);
}
