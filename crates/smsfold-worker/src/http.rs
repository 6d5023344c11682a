//! The worker's HTTP endpoints: `/metrics` for Prometheus, `/healthz`,
//! `/readyz`, and read-only JSON views of the projections this instance
//! contains, over all its pipelines (`/campaigns`, `/campaigns/{id}`,
//! `/messages/{id}`).

use std::net::SocketAddr;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Value};
use smsfold_domain::{CampaignProjection, MessageProjection, MessageStatus};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::error::WorkerError;
use crate::pipelines::ProcessView;

#[derive(Clone)]
struct AppState {
    metrics: Option<PrometheusHandle>,
    view: ProcessView,
}

/// Binds `addr` and serves until `shutdown` turns true.
pub async fn serve(
    addr: SocketAddr,
    metrics: Option<PrometheusHandle>,
    view: ProcessView,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let state = AppState { metrics, view };
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readiness))
        .route("/campaigns", get(list_campaigns))
        .route("/campaigns/{id}", get(show_campaign))
        .route("/messages/{id}", get(show_message))
        .with_state(state);
    let listener = TcpListener::bind(addr).await.map_err(|error| WorkerError::Http { addr, error })?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        })
        .await
        .map_err(|error| WorkerError::Http { addr, error })
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    match state.metrics {
        Some(handle) => handle.render().into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled in this process\n").into_response(),
    }
}

async fn readiness(State(state): State<AppState>) -> Response {
    if state.view.is_ready() {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: no partitions assigned yet\n").into_response()
    }
}

async fn list_campaigns(State(state): State<AppState>) -> Json<Value> {
    let campaigns: Vec<Value> = state.view.campaign_projections().iter().map(campaign_json).collect();
    Json(json!({ "campaigns": campaigns }))
}

async fn show_campaign(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let projection = state.view.campaign(&id);
    match projection {
        Some(projection) => Json(campaign_json(&projection)).into_response(),
        None => (StatusCode::NOT_FOUND, format!("campaign {id:?} is not held by this instance\n")).into_response(),
    }
}

async fn show_message(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let projection = state.view.message(&id);
    match projection {
        Some(projection) => Json(message_json(&projection)).into_response(),
        None => (StatusCode::NOT_FOUND, format!("message {id:?} is not held by this instance\n")).into_response(),
    }
}

/// Renders a campaign projection as JSON; times are milliseconds since the
/// Unix epoch.
pub fn campaign_json(projection: &CampaignProjection) -> Value {
    let counts = &projection.counts;
    let by_status: serde_json::Map<String, Value> = MessageStatus::ALL
        .into_iter()
        .map(|status| (status.as_str().to_owned(), json!(counts.count(status))))
        .collect();
    json!({
        "campaign_id": projection.campaign_id,
        "status": projection.status.map(|s| s.as_str()),
        "status_at_ms": projection.status_at.map(|t| t.as_millis()),
        "account_id": projection.account_id,
        "name": projection.name,
        "send_at_ms": projection.send_at.map(|t| t.as_millis()),
        "recipients": projection.recipients,
        "dispatched": projection.dispatched,
        "messages": counts.messages(),
        "by_status": by_status,
        "segments": counts.segments,
        "billable_segments": counts.billable_segments,
        "delivered": counts.delivered(),
        "failed": counts.failed(),
        "delivery_rate": counts.delivery_rate(),
    })
}

/// Renders a message projection as JSON. `receipt_stat` and `receipt_err`
/// are the carrier's raw report of the receipt behind the status, else of
/// the most advanced intermediate receipt; null without one.
pub fn message_json(projection: &MessageProjection) -> Value {
    let carrier_report = projection.receipts.current_report();
    json!({
        "message_id": projection.message_id,
        "status": projection.status.as_str(),
        "status_at_ms": projection.status_at.as_millis(),
        "error_code": projection.error_code,
        "campaign_id": projection.campaign_id,
        "segments": projection.segments,
        "channel": projection.channel.as_str(),
        "receipt_stat": carrier_report.and_then(|report| report.stat.as_deref()),
        "receipt_err": carrier_report.and_then(|report| report.err.as_deref()),
        "delivered_segments": projection.receipts.delivered_segments.len(),
    })
}

#[cfg(test)]
mod tests {
    use smsfold_domain::{CarrierReport, Channel, ReceiptHistory, Timestamp};

    use super::*;

    #[test]
    fn message_json_shows_raw_report() {
        let receipts = ReceiptHistory {
            status_report: Some(CarrierReport::new(Some("UNDELIV"), Some("001"))),
            ..ReceiptHistory::default()
        };
        let projection = MessageProjection {
            message_id: "m-1".into(),
            status: MessageStatus::Undelivered,
            status_at: Timestamp::from_millis(5),
            error_code: 1,
            campaign_id: None,
            segments: 1,
            channel: Channel::Sms,
            receipts,
        };

        let value = message_json(&projection);

        assert_eq!(value["receipt_stat"], "UNDELIV");
        assert_eq!(value["receipt_err"], "001");
        assert_eq!(value["delivered_segments"], 0);
    }

    #[test]
    fn message_json_without_receipt_has_nulls() {
        let projection = MessageProjection {
            message_id: "m-2".into(),
            status: MessageStatus::Sent,
            status_at: Timestamp::from_millis(5),
            error_code: 0,
            campaign_id: None,
            segments: 1,
            channel: Channel::Sms,
            receipts: ReceiptHistory::default(),
        };

        assert!(message_json(&projection)["receipt_stat"].is_null());
    }
}
