//! Errors from decoding a record.

/// A record that is not a valid event. The worker dead-letters it with
/// [`DecodeError::reason`] as the reason.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported content type {0:?}; use application/json or application/x-protobuf")]
    UnsupportedContentType(String),
    #[error("missing field {0}")]
    MissingField(&'static str),
    #[error("unknown event kind {0:?}")]
    UnknownKind(String),
    #[error("invalid {field}: {detail}")]
    InvalidValue { field: &'static str, detail: String },
}

impl DecodeError {
    /// Returns the low-cardinality reason used as a metric label and in the
    /// dead-letter reason header.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Protobuf(_) => "invalid_protobuf",
            DecodeError::Json(_) => "invalid_json",
            DecodeError::UnsupportedContentType(_) => "unsupported_content_type",
            DecodeError::MissingField(_) => "missing_field",
            DecodeError::UnknownKind(_) => "unknown_kind",
            DecodeError::InvalidValue { .. } => "invalid_value",
        }
    }

    pub(crate) fn invalid(field: &'static str, detail: impl Into<String>) -> Self {
        DecodeError::InvalidValue { field, detail: detail.into() }
    }
}
