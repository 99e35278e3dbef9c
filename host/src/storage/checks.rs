//! What every backend refuses, in the same words: a key no filter can
//! name exactly (SQLite's JSON paths end a key at U+0000, PostgreSQL's
//! JSONB holds no U+0000 at all) and a client's filter too large.

use serde_json::Value;
use warden_types::{Clause, Condition, Operator};

use super::{Filter, Object, StorageError};

/// At most this many terms in one filter of a client (a key's equality is
/// one term, `$contains` one per item): a bound on the work of a query,
/// well under SQLite's expression depth of 1000.
pub const MAX_CLIENT_TERMS: usize = 100;

/// Checks that filters can read `document`'s top-level keys exactly: a
/// [`StorageError::BadQuery`] naming the first that cannot be, where
/// `what` says which document it is (`metadata`, ...).
pub(crate) fn filterable(document: &Object, what: &str) -> Result<(), StorageError> {
    match document.keys().find(|key| !expressible(key)) {
        Some(key) => Err(StorageError::BadQuery(format!(
            "Unsupported key in {what}: {}: a key cannot contain the character U+0000",
            Value::from(key.as_str())
        ))),
        None => Ok(()),
    }
}

/// Checks that a filter's condition names its key exactly.
pub(crate) fn filter_key(key: &str) -> Result<(), StorageError> {
    if expressible(key) {
        Ok(())
    } else {
        Err(StorageError::BadQuery(format!(
            "Unsupported filter key: {}: a key cannot contain the character U+0000",
            Value::from(key)
        )))
    }
}

/// Checks that a client's filter has at most [`MAX_CLIENT_TERMS`] terms.
pub(crate) fn client_filter(filter: &Filter) -> Result<(), StorageError> {
    let terms: usize = filter.clauses.iter().map(terms).sum();
    if terms > MAX_CLIENT_TERMS {
        return Err(StorageError::BadQuery(format!(
            "Filter too large: {terms} conditions (at most {MAX_CLIENT_TERMS})"
        )));
    }
    Ok(())
}

/// A client's containment query (`{"k": v}`: key present and equal) as
/// the filter it means.
pub(crate) fn containment(object: &Object) -> Filter {
    let clauses = object
        .iter()
        .map(|(key, operand)| {
            Clause::Condition(Condition {
                key: key.clone(),
                op: Operator::Eq,
                operand: operand.clone(),
            })
        })
        .collect();
    Filter { clauses }
}

/// A page bound as the databases take it: 64-bit signed, so a larger
/// count (a client may send any `u64`) means the same as the largest.
pub(crate) fn bound(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// How many terms a clause adds to the query.
fn terms(clause: &Clause) -> usize {
    let condition = |c: &Condition| match (&c.op, &c.operand) {
        (Operator::Contains, Value::Array(items)) => items.len().max(1),
        (Operator::Contains | Operator::Eq, _) => 1,
    };
    match clause {
        Clause::Condition(c) => condition(c),
        Clause::AnyOf(branches) => branches.iter().flatten().map(condition).sum(),
    }
}

/// Whether a filter can name `key` exactly.
fn expressible(key: &str) -> bool {
    !key.contains('\0')
}
