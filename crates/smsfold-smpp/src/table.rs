//! The table that maps a receipt's `stat` text to an [`Outcome`].
//!
//! The default table contains the SMPP 3.4 stat values and common vendor
//! spellings of them. Overrides add vendor-specific states or change a
//! default. They are read with serde from a map of state to outcome name,
//! such as `{"DLVRD": "delivered", "NOROUTE": "undelivered"}`. State names
//! are matched without regard to ASCII case. A stat that is not in the table
//! maps to [`Outcome::Unknown`].

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::StateTableError;
use crate::state::Outcome;

/// The stat values every table starts with, in upper case.
const DEFAULT_STATES: [(&str, Outcome); 17] = [
    ("DELIVRD", Outcome::Delivered),
    ("DELIVERED", Outcome::Delivered),
    ("UNDELIV", Outcome::Undelivered),
    ("UNDELIVERABLE", Outcome::Undelivered),
    ("UNDELIVERED", Outcome::Undelivered),
    ("EXPIRED", Outcome::Undelivered),
    ("DELETED", Outcome::Undelivered),
    ("REJECTD", Outcome::Undelivered),
    ("REJECTED", Outcome::Undelivered),
    ("ACCEPTD", Outcome::Intermediate),
    ("ACCEPTED", Outcome::Intermediate),
    ("ENROUTE", Outcome::Intermediate),
    ("BUFFRED", Outcome::Intermediate),
    ("BUFFERED", Outcome::Intermediate),
    ("SCHEDULED", Outcome::Intermediate),
    ("UNKNOWN", Outcome::Unknown),
    ("SKIPPED", Outcome::Unknown),
];

/// A mapping from receipt `stat` text to [`Outcome`]: the defaults plus any
/// overrides.
///
/// Deserializing reads a map of overrides and applies it to the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "BTreeMap<String, String>")]
pub struct StateTable {
    /// Upper-case state names and their outcomes. A table has the 17
    /// defaults and usually a few overrides, so lookup is a linear scan
    /// that compares lengths first and allocates nothing.
    entries: Vec<(Box<str>, Outcome)>,
}

impl Default for StateTable {
    fn default() -> Self {
        let entries = DEFAULT_STATES.iter().map(|&(state, outcome)| (Box::from(state), outcome)).collect();
        StateTable { entries }
    }
}

impl StateTable {
    /// Builds the default table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the default table with `overrides`, pairs of a state name and
    /// an outcome name (`delivered`, `undelivered`, `intermediate` or
    /// `unknown`).
    ///
    /// Returns an error naming the first state whose outcome name is
    /// invalid, whose name is empty or contains whitespace or a colon, or
    /// that occurs twice in `overrides` in any case.
    pub fn with_overrides<I, S, O>(overrides: I) -> Result<Self, StateTableError>
    where
        I: IntoIterator<Item = (S, O)>,
        S: AsRef<str>,
        O: AsRef<str>,
    {
        let mut table = Self::default();
        let mut overridden: Vec<String> = Vec::new();
        for (state, outcome) in overrides {
            let (state, outcome) = (state.as_ref(), outcome.as_ref());
            let parsed = outcome.parse::<Outcome>().map_err(|_| StateTableError::InvalidOutcome {
                state: state.to_owned(),
                value: outcome.to_owned(),
            })?;
            if overridden.iter().any(|seen| seen.eq_ignore_ascii_case(state)) {
                return Err(StateTableError::DuplicateState { state: state.to_owned() });
            }
            table.insert(state, parsed)?;
            overridden.push(state.to_owned());
        }
        Ok(table)
    }

    /// Maps `state` to `outcome`, replacing its current mapping.
    ///
    /// Returns an error when `state` is empty or contains whitespace or a
    /// colon, because such a name never equals a parsed `stat` value.
    pub fn insert(&mut self, state: &str, outcome: Outcome) -> Result<(), StateTableError> {
        let valid = !state.is_empty() && !state.bytes().any(|byte| byte.is_ascii_whitespace() || byte == b':');
        if !valid {
            return Err(StateTableError::InvalidState { state: state.to_owned() });
        }
        match self.entries.iter_mut().find(|(name, _)| name.eq_ignore_ascii_case(state)) {
            Some(entry) => entry.1 = outcome,
            None => self.entries.push((state.to_ascii_uppercase().into_boxed_str(), outcome)),
        }
        Ok(())
    }

    /// Returns the outcome of `stat`, or `None` when the table does not
    /// hold it. Case is ignored.
    pub fn get(&self, stat: &str) -> Option<Outcome> {
        self.entries
            .iter()
            .find(|(name, _)| name.len() == stat.len() && name.eq_ignore_ascii_case(stat))
            .map(|&(_, outcome)| outcome)
    }

    /// Returns the outcome of `stat`, and [`Outcome::Unknown`] for a stat
    /// that the table does not hold.
    pub fn outcome_of_stat(&self, stat: &str) -> Outcome {
        self.get(stat).unwrap_or(Outcome::Unknown)
    }

    /// Returns every state and its outcome: the defaults in their fixed
    /// order, then added states in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Outcome)> + '_ {
        self.entries.iter().map(|(name, outcome)| (&**name, *outcome))
    }
}

impl TryFrom<BTreeMap<String, String>> for StateTable {
    type Error = StateTableError;

    fn try_from(overrides: BTreeMap<String, String>) -> Result<Self, Self::Error> {
        StateTable::with_overrides(overrides)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_states_are_upper_case_and_distinct() {
        for (index, (state, _)) in DEFAULT_STATES.iter().enumerate() {
            assert_eq!(state.to_ascii_uppercase(), *state);
            assert!(!DEFAULT_STATES[index + 1..].iter().any(|(other, _)| other == state), "{state}");
        }
    }

    #[test]
    fn lookup_ignores_case() {
        let table = StateTable::new();

        assert_eq!(table.get("delivrd"), Some(Outcome::Delivered));
        assert_eq!(table.get("Undeliv"), Some(Outcome::Undelivered));
    }

    #[test]
    fn unlisted_stat_is_unknown() {
        let table = StateTable::new();

        assert_eq!(table.get("NOROUTE"), None);
        assert_eq!(table.outcome_of_stat("NOROUTE"), Outcome::Unknown);
    }

    #[test]
    fn insert_replaces_default() {
        let mut table = StateTable::new();

        table.insert("acceptd", Outcome::Delivered).unwrap();

        assert_eq!(table.get("ACCEPTD"), Some(Outcome::Delivered));
        assert_eq!(table.iter().count(), DEFAULT_STATES.len());
    }

    #[test]
    fn insert_rejects_unmatchable_names() {
        let mut table = StateTable::new();

        for state in ["", "NO ROUTE", "stat:X", "TAB\tBED"] {
            let error = table.insert(state, Outcome::Undelivered).unwrap_err();
            assert_eq!(error, StateTableError::InvalidState { state: state.to_owned() });
        }
    }
}
