//! A message's receipt details in the message stage's changelog: the raw
//! report behind its status, its progress report and its delivered
//! segments, as fields of `smsfold.v1.internal.MessageState`.

use smsfold_domain::{ProgressReport, ReceiptHistory, SegmentDelivery, Timestamp};

use crate::carrier_join::{outcome_from_proto, outcome_to_proto, report_from_proto, report_to_proto};
use crate::error::DecodeError;
use crate::proto::internal;

/// Writes `history` into the changelog value of its message.
pub(crate) fn write(history: &ReceiptHistory, state: &mut internal::MessageState) {
    state.status_report = history.status_report.as_ref().map(report_to_proto);
    state.progress = history.progress.as_ref().map(|progress| internal::ProgressState {
        outcome: outcome_to_proto(progress.outcome) as i32,
        at_ms: progress.at.as_millis(),
        report: Some(report_to_proto(&progress.report)),
    });
    state.segment_counts = history.segment_counts.iter().map(|&count| u32::from(count)).collect();
    state.delivered_segments = history
        .delivered_segments
        .iter()
        .map(|delivery| internal::SegmentDeliveryState {
            index: u32::from(delivery.index),
            at_ms: delivery.at.as_millis(),
            error_code: delivery.error_code,
            report: delivery.report.as_ref().map(report_to_proto),
        })
        .collect();
}

/// Reads the receipt details from the changelog value of a message.
pub(crate) fn read(state: &mut internal::MessageState) -> Result<ReceiptHistory, DecodeError> {
    let progress = match state.progress.take() {
        Some(progress) => Some(ProgressReport {
            outcome: outcome_from_proto(progress.outcome)?,
            at: Timestamp::from_millis(progress.at_ms),
            report: progress.report.map(report_from_proto).unwrap_or_default(),
        }),
        None => None,
    };
    let segment_counts = state
        .segment_counts
        .iter()
        .map(|&count| u16::try_from(count).map_err(|_| DecodeError::invalid("segment_counts", format!("{count} is above 65535"))))
        .collect::<Result<_, _>>()?;
    let delivered_segments = std::mem::take(&mut state.delivered_segments)
        .into_iter()
        .map(|delivery| {
            let index = u16::try_from(delivery.index)
                .map_err(|_| DecodeError::invalid("delivered_segments", format!("index {} is above 65535", delivery.index)))?;
            Ok(SegmentDelivery {
                index,
                at: Timestamp::from_millis(delivery.at_ms),
                error_code: delivery.error_code,
                report: delivery.report.map(report_from_proto),
            })
        })
        .collect::<Result<_, DecodeError>>()?;
    Ok(ReceiptHistory {
        status_report: state.status_report.take().map(report_from_proto),
        progress,
        segment_counts,
        delivered_segments,
    })
}
