//! The receipt state table: its defaults, and vendor overrides loaded with
//! serde from a JSON map.

use smsfold_smpp::{Outcome, Receipt, ReceiptTlvs, StateTable, StateTableError};

fn load(json: &str) -> Result<StateTable, serde_json::Error> {
    serde_json::from_str(json)
}

#[test]
fn defaults_map_standard_states() {
    let table = StateTable::new();
    let cases = [
        ("DELIVRD", Outcome::Delivered),
        ("UNDELIV", Outcome::Undelivered),
        ("EXPIRED", Outcome::Undelivered),
        ("DELETED", Outcome::Undelivered),
        ("REJECTD", Outcome::Undelivered),
        ("ACCEPTD", Outcome::Intermediate),
        ("ENROUTE", Outcome::Intermediate),
        ("UNKNOWN", Outcome::Unknown),
        ("SKIPPED", Outcome::Unknown),
    ];

    for (stat, outcome) in cases {
        assert_eq!(table.outcome_of_stat(stat), outcome, "{stat}");
    }
}

#[test]
fn overrides_load_from_json() {
    // Given a vendor's states
    let json = r#"{"DLVRD": "delivered", "noroute": "undelivered", "Pending": "intermediate"}"#;

    // When the table is loaded
    let table = load(json).unwrap();

    // Then they map in any case, and the defaults remain
    assert_eq!(table.outcome_of_stat("dlvrd"), Outcome::Delivered);
    assert_eq!(table.outcome_of_stat("NOROUTE"), Outcome::Undelivered);
    assert_eq!(table.outcome_of_stat("PENDING"), Outcome::Intermediate);
    assert_eq!(table.outcome_of_stat("DELIVRD"), Outcome::Delivered);
}

#[test]
fn override_changes_default() {
    // Given a vendor whose ACCEPTD is final
    let table = load(r#"{"acceptd": "delivered"}"#).unwrap();

    // When a receipt in that state is read
    let receipt = Receipt::read("id:1 stat:ACCEPTD", &ReceiptTlvs::default(), &table).unwrap();

    // Then it ends the message
    assert_eq!(receipt.outcome, Outcome::Delivered);
}

#[test]
fn override_can_mark_unknown() {
    let table = load(r#"{"DELIVERED": "unknown"}"#).unwrap();

    assert_eq!(table.get("DELIVERED"), Some(Outcome::Unknown));
}

#[test]
fn empty_map_gives_defaults() {
    assert_eq!(load("{}").unwrap(), StateTable::new());
}

#[test]
fn invalid_outcome_names_key() {
    // Given a misspelled outcome
    let json = r#"{"DLVRD": "delivered", "NOROUTE": "undelivred"}"#;

    // When the table is loaded
    let message = load(json).unwrap_err().to_string();

    // Then the message names the state and the value
    assert!(message.contains("\"NOROUTE\""), "{message}");
    assert!(message.contains("\"undelivred\""), "{message}");
}

#[test]
fn outcome_names_are_lowercase_only() {
    let error = StateTable::with_overrides([("DLVRD", "Delivered")]).unwrap_err();

    assert_eq!(error, StateTableError::InvalidOutcome { state: "DLVRD".into(), value: "Delivered".into() });
}

#[test]
fn keys_differing_in_case_rejected() {
    let error = StateTable::with_overrides([("dlvrd", "delivered"), ("DLVRD", "undelivered")]).unwrap_err();

    assert_eq!(error, StateTableError::DuplicateState { state: "DLVRD".into() });
}

#[test]
fn key_with_space_rejected() {
    let message = load(r#"{"NO ROUTE": "undelivered"}"#).unwrap_err().to_string();

    assert!(message.contains("\"NO ROUTE\""), "{message}");
}

#[test]
fn non_string_value_rejected() {
    assert!(load(r#"{"DLVRD": 2}"#).is_err());
}
