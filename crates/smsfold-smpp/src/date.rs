//! Receipt dates, `YYMMDDhhmm` or `YYMMDDhhmmss`, as event time.
//!
//! A receipt date carries no time zone, because the carrier picks one.
//! smsfold reads it as UTC, with the two-digit year in 2000 to 2099, and returns
//! milliseconds since the Unix epoch. A date that names no real time (month
//! 13, 30 February, minute 60) is an error, and so is any other length.

use smsfold_domain::Timestamp;
use time::{Date, Month, PrimitiveDateTime, Time};

use crate::error::{quote, ReceiptError};

/// Parses a 10-digit (to the minute) or 12-digit (to the second) receipt
/// date in UTC. `field` names the field in the error.
pub(crate) fn parse_receipt_date(value: &str, field: &'static str) -> Result<Timestamp, ReceiptError> {
    let invalid = || ReceiptError::InvalidDate { field, value: quote(value) };

    let digits = value.as_bytes();
    if !(digits.len() == 10 || digits.len() == 12) || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let pair = |index: usize| (digits[index] - b'0') * 10 + (digits[index + 1] - b'0');
    let second = if digits.len() == 12 { pair(10) } else { 0 };

    let month = Month::try_from(pair(2)).map_err(|_| invalid())?;
    let date = Date::from_calendar_date(2000 + i32::from(pair(0)), month, pair(4)).map_err(|_| invalid())?;
    let time = Time::from_hms(pair(6), pair(8), second).map_err(|_| invalid())?;
    let seconds = PrimitiveDateTime::new(date, time).assume_utc().unix_timestamp();
    Ok(Timestamp::from_millis(seconds * 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-03-15T12:30:00Z in milliseconds since the Unix epoch.
    const MARCH_15_1230: i64 = 1_710_505_800_000;

    fn parse(value: &str) -> Result<Timestamp, ReceiptError> {
        parse_receipt_date(value, "done date")
    }

    #[test]
    fn ten_digits_read_as_utc_minute() {
        assert_eq!(parse("2403151230"), Ok(Timestamp::from_millis(MARCH_15_1230)));
    }

    #[test]
    fn twelve_digits_add_seconds() {
        assert_eq!(parse("240315123045"), Ok(Timestamp::from_millis(MARCH_15_1230 + 45_000)));
    }

    #[test]
    fn year_00_is_2000() {
        assert_eq!(parse("0001010000"), Ok(Timestamp::from_millis(946_684_800_000)));
    }

    #[test]
    fn leap_day_accepted_in_leap_year() {
        assert!(parse("2402291200").is_ok());
    }

    #[test]
    fn impossible_dates_rejected() {
        for value in [
            "2313011200",   // month 13
            "2400011200",   // month 0
            "2302291200",   // 29 February in a common year
            "2404311200",   // 31 April
            "2403152400",   // hour 24
            "2403151260",   // minute 60
            "240315123060", // second 60
            "240315123",    // 9 digits
            "24031512300",  // 11 digits
            "2403151230000",
            "24031512a0",
            "",
        ] {
            let error = parse(value).unwrap_err();
            assert_eq!(error.reason(), "receipt_invalid_date", "{value:?}");
        }
    }

    #[test]
    fn error_names_field_and_value() {
        let error = parse("2413011200").unwrap_err();

        assert_eq!(error, ReceiptError::InvalidDate { field: "done date", value: "2413011200".to_owned() });
    }
}
