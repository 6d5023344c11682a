//! The `content-type` header that names a record value's format.

use crate::error::DecodeError;

/// The record header that names the value's format.
pub const CONTENT_TYPE_HEADER: &str = "content-type";

/// The two formats smsfold reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Protobuf,
}

impl Format {
    /// Returns the media type written in the `content-type` header.
    pub const fn media_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Protobuf => "application/x-protobuf",
        }
    }

    /// Reads a record's format from its `content-type` header value.
    ///
    /// Media type parameters (`; charset=utf-8`) are ignored and case does not
    /// matter. Without a header, the value is JSON when its very first byte
    /// is `{`, and protobuf otherwise. A smsfold protobuf event never starts
    /// with `{` (0x7B would open a field-15 group, a wire type the schemas do
    /// not use). Leading whitespace is not skipped, because 0x0A, a newline,
    /// is also the tag of protobuf field 1.
    pub fn detect(header: Option<&[u8]>, value: &[u8]) -> Result<Format, DecodeError> {
        let Some(header) = header else {
            return Ok(if value.first() == Some(&b'{') { Format::Json } else { Format::Protobuf });
        };
        // Compared in place, case-insensitively, because this runs for every
        // record. Only ASCII whitespace is trimmed: HTTP allows spaces and
        // tabs there.
        let media_type = header.split(|&byte| byte == b';').next().unwrap_or_default().trim_ascii();
        let matches = |name: &str| media_type.eq_ignore_ascii_case(name.as_bytes());
        if matches("application/json") {
            Ok(Format::Json)
        } else if matches("application/x-protobuf")
            || matches("application/protobuf")
            || matches("application/vnd.google.protobuf")
        {
            Ok(Format::Protobuf)
        } else {
            Err(DecodeError::UnsupportedContentType(String::from_utf8_lossy(header).into_owned()))
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Format::Json),
            "protobuf" => Ok(Format::Protobuf),
            other => Err(format!("unknown format {other:?}; use json or protobuf")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_selects_format() {
        let json = Format::detect(Some(b"application/json; charset=utf-8"), b"");
        assert_eq!(json.unwrap(), Format::Json);
        let proto = Format::detect(Some(b"Application/X-Protobuf"), b"{");
        assert_eq!(proto.unwrap(), Format::Protobuf);
        let padded = Format::detect(Some(b" application/vnd.google.protobuf ;proto=smsfold.v1"), b"{");
        assert_eq!(padded.unwrap(), Format::Protobuf);
    }

    #[test]
    fn unknown_header_is_rejected() {
        let error = Format::detect(Some(b"text/csv"), b"{}").unwrap_err();
        assert_eq!(error.reason(), "unsupported_content_type");
        let prefix = Format::detect(Some(b"application/jsonx"), b"{}").unwrap_err();
        assert!(prefix.to_string().contains("application/jsonx"), "{prefix}");
    }

    #[test]
    fn missing_header_sniffs_value() {
        assert_eq!(Format::detect(None, b"{\"a\":1}").unwrap(), Format::Json);
        assert_eq!(Format::detect(None, b"\x0a{").unwrap(), Format::Protobuf);
        assert_eq!(Format::detect(None, b"\x0a\x02e1").unwrap(), Format::Protobuf);
        assert_eq!(Format::detect(None, b"").unwrap(), Format::Protobuf);
    }
}
