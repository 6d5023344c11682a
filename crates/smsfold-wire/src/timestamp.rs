//! Conversions between the domain's millisecond timestamps and the wire's
//! RFC 3339 strings and protobuf `Timestamp`s.

use serde::Deserialize;
use smsfold_domain::Timestamp;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::DecodeError;

/// A time in JSON: an RFC 3339 string, or an integer of milliseconds since
/// the Unix epoch.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum JsonTime {
    Millis(i64),
    Text(String),
}

impl JsonTime {
    pub(crate) fn to_timestamp(&self, field: &'static str) -> Result<Timestamp, DecodeError> {
        match self {
            JsonTime::Millis(millis) => Ok(Timestamp::from_millis(*millis)),
            JsonTime::Text(text) => parse_rfc3339(text, field),
        }
    }
}

pub(crate) fn parse_rfc3339(text: &str, field: &'static str) -> Result<Timestamp, DecodeError> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|error| DecodeError::invalid(field, format!("{text:?} is not an RFC 3339 time: {error}")))?;
    // Floor division, so a time before 1970 drops its sub-millisecond
    // digits instead of rounding towards zero.
    let millis = parsed.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(millis)
        .map(Timestamp::from_millis)
        .map_err(|_| DecodeError::invalid(field, format!("{text:?} is out of range")))
}

/// Formats a timestamp as RFC 3339 in UTC with millisecond precision.
pub(crate) fn format_rfc3339(at: Timestamp) -> String {
    let nanos = i128::from(at.as_millis()) * 1_000_000;
    match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(time) => time.format(&Rfc3339).unwrap_or_else(|_| at.as_millis().to_string()),
        Err(_) => at.as_millis().to_string(),
    }
}

pub(crate) fn from_proto(
    timestamp: Option<&prost_types::Timestamp>,
    field: &'static str,
) -> Result<Option<Timestamp>, DecodeError> {
    let Some(timestamp) = timestamp else { return Ok(None) };
    if !(0..1_000_000_000).contains(&timestamp.nanos) {
        return Err(DecodeError::invalid(field, format!("nanos {} is outside 0..1e9", timestamp.nanos)));
    }
    timestamp
        .seconds
        .checked_mul(1000)
        .and_then(|millis| millis.checked_add(i64::from(timestamp.nanos / 1_000_000)))
        .map(|millis| Some(Timestamp::from_millis(millis)))
        .ok_or_else(|| DecodeError::invalid(field, format!("seconds {} is out of range", timestamp.seconds)))
}

pub(crate) fn to_proto(at: Timestamp) -> prost_types::Timestamp {
    let millis = at.as_millis();
    prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        let at = parse_rfc3339("2024-03-15T12:30:00.250Z", "occurred_at").unwrap();
        assert_eq!(at.as_millis(), 1_710_505_800_250);
        assert_eq!(format_rfc3339(at), "2024-03-15T12:30:00.25Z");
    }

    #[test]
    fn offsets_convert_to_utc() {
        let at = parse_rfc3339("2024-03-15T14:30:00+02:00", "occurred_at").unwrap();
        assert_eq!(at.as_millis(), 1_710_505_800_000);
    }

    #[test]
    fn proto_round_trips_negative_millis() {
        let at = Timestamp::from_millis(-1);
        let proto = to_proto(at);
        assert_eq!((proto.seconds, proto.nanos), (-1, 999_000_000));
        assert_eq!(from_proto(Some(&proto), "t").unwrap(), Some(at));
    }

    #[test]
    fn proto_rejects_bad_nanos() {
        let bad = prost_types::Timestamp { seconds: 1, nanos: -5 };
        assert_eq!(from_proto(Some(&bad), "t").unwrap_err().reason(), "invalid_value");
    }
}
