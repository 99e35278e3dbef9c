//! Filters as SQL over a JSONB column, with the SQLite backend's meaning
//! (`sqlite/filter.rs`), every value and key a bound parameter.
//!
//! Equality is type-strict: stored `3` does not match `"3"`, nor `3.0` an
//! integer operand. A string, boolean or null operand, and a `$contains`
//! item of those, is a containment `col @> {"key": operand}` (or
//! `{"key": [item]}`), which the `jsonb_path_ops` GIN indexes serve: that
//! is the owner filter. JSONB compares numbers by value (`3 = 3.0`), so an
//! integer operand also asks for a stored integer (its text holds no `.`
//! nor exponent); a float operand matches any number of that value, as in
//! SQLite. An array or object operand is JSONB equality.
//!
//! Where the two differ, the storage tests (`conformance.rs`) do not go:
//! an array or object operand is equal in SQLite when its compact JSON
//! text is (so `{"a":1,"b":2}` differs from `{"b":2,"a":1}` there, not
//! here), and a float stored in exponent form without a fraction (`1e16`,
//! as serde_json writes floats from 1e16 up) reads as an integer here.
//!
//! Keys with U+0000 are refused as SQLite's backend refuses them (JSONB
//! could not hold them anyway), and a client's filter is bounded the same
//! way (`checks.rs`).

use serde_json::{Value, json};
use tokio_postgres::types::{ToSql, Type};
use warden_types::{Clause, Condition, Operator};

use crate::storage::checks::{bound, client_filter, containment, filter_key};
use crate::storage::{Filter, Object, StorageError};

/// A parameter, with the type the statement gives it (statements are sent
/// with their parameters' types: one round trip, nothing prepared).
type Param = (Box<dyn ToSql + Sync + Send>, Type);

/// A statement's parameters, bound as its SQL is written.
#[derive(Default)]
pub(super) struct Params(Vec<Param>);

impl Params {
    /// Binds `value` as a `ty`: its placeholder (`$n`).
    pub(super) fn bind(&mut self, value: impl ToSql + Sync + Send + 'static, ty: Type) -> String {
        self.0.push((Box::new(value), ty));
        format!("${}", self.0.len())
    }

    /// Binds a JSON document as `jsonb`.
    pub(super) fn json(&mut self, value: Value) -> String {
        self.bind(value, Type::JSONB)
    }

    /// Binds text.
    pub(super) fn text(&mut self, value: impl Into<String>) -> String {
        self.bind(value.into(), Type::TEXT)
    }

    /// The parameters as `tokio_postgres` takes them.
    pub(super) fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0
            .iter()
            .map(|(value, _)| &**value as &(dyn ToSql + Sync))
            .collect()
    }

    /// The parameters' types, as a statement is prepared with them.
    pub(super) fn types(&self) -> Vec<Type> {
        self.0.iter().map(|(_, ty)| ty.clone()).collect()
    }
}

/// SQL conditions, AND-ed, and the parameters of the statement they go in.
#[derive(Default)]
pub(super) struct Where {
    parts: Vec<String>,
    /// The statement's parameters, conditions' first.
    pub(super) params: Params,
}

impl Where {
    /// No condition yet, binding after `params`.
    pub(super) fn after(params: Params) -> Self {
        Self {
            parts: Vec::new(),
            params,
        }
    }

    /// Adds a condition, written with [`Where::params`]' placeholders.
    pub(super) fn push(&mut self, sql: impl Into<String>) {
        self.parts.push(sql.into());
    }

    /// Adds the auth plugin's filter on `column`. A filter the database
    /// cannot express is the plugin's fault: a [`StorageError::Filter`].
    pub(super) fn filter(
        &mut self,
        column: &str,
        filter: Option<&Filter>,
    ) -> Result<(), StorageError> {
        let Some(filter) = filter else {
            return Ok(());
        };
        self.clauses(column, filter)
            .map_err(|error| StorageError::Filter(format!("the auth plugin's filter: {error}")))
    }

    /// Adds a client's filter on `column` (bounded, keys checked).
    pub(super) fn query(&mut self, column: &str, filter: &Filter) -> Result<(), StorageError> {
        client_filter(filter)?;
        self.clauses(column, filter)
    }

    /// Adds a client's containment query (`{"k": v}`: key present and
    /// equal), as [`Where::query`].
    pub(super) fn contains(&mut self, column: &str, object: &Object) -> Result<(), StorageError> {
        self.query(column, &containment(object))
    }

    fn clauses(&mut self, column: &str, filter: &Filter) -> Result<(), StorageError> {
        for clause in &filter.clauses {
            let sql = match clause {
                Clause::Condition(c) => condition(column, c, &mut self.params)?,
                Clause::AnyOf(branches) => {
                    let mut ors = Vec::with_capacity(branches.len());
                    for branch in branches {
                        let ands = branch
                            .iter()
                            .map(|c| condition(column, c, &mut self.params))
                            .collect::<Result<Vec<_>, _>>()?;
                        // An empty branch holds no condition: it is true.
                        if ands.is_empty() {
                            ors.push("TRUE".to_owned());
                        } else {
                            ors.push(format!("({})", ands.join(" AND ")));
                        }
                    }
                    if ors.is_empty() {
                        "FALSE".to_owned()
                    } else {
                        format!("({})", ors.join(" OR "))
                    }
                }
            };
            self.parts.push(sql);
        }
        Ok(())
    }

    /// ` WHERE ...`, or nothing.
    pub(super) fn sql(&self) -> String {
        if self.parts.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.parts.join(" AND "))
        }
    }

    /// ` LIMIT $l OFFSET $o`, bound.
    pub(super) fn page(&mut self, limit: u64, offset: u64) -> String {
        let limit = self.params.bind(bound(limit), Type::INT8);
        let offset = self.params.bind(bound(offset), Type::INT8);
        format!(" LIMIT {limit} OFFSET {offset}")
    }
}

/// Whether JSONB containment of `operand` means type-strict equality.
fn contained_exactly(operand: &Value) -> bool {
    match operand {
        Value::Null | Value::Bool(_) | Value::String(_) => true,
        // A float matches any number of its value, as in SQLite.
        Value::Number(n) => n.as_i64().is_none(),
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// The condition that the JSONB value `value` (an SQL expression) equals
/// `operand`, type-strictly (for operands [`contained_exactly`] does not
/// cover).
fn equal(value: &str, operand: &Value, params: &mut Params) -> String {
    let bound = params.json(operand.clone());
    match operand {
        // An integer: a stored integer (no fraction, no exponent) of that value.
        Value::Number(_) => format!("({value} = {bound} AND {value}::text !~ '[.eE]')"),
        _ => format!("{value} = {bound}"),
    }
}

fn condition(column: &str, c: &Condition, params: &mut Params) -> Result<String, StorageError> {
    filter_key(&c.key)?;
    Ok(match c.op {
        Operator::Eq => {
            if contained_exactly(&c.operand) {
                let document = params.json(json!({ c.key.clone(): c.operand.clone() }));
                format!("{column} @> {document}")
            } else {
                let key = params.text(c.key.clone());
                equal(&format!("({column} -> {key})"), &c.operand, params)
            }
        }
        Operator::Contains => {
            let wanted: Vec<&Value> = match &c.operand {
                Value::Array(items) => items.iter().collect(),
                one => vec![one],
            };
            let key = params.text(c.key.clone());
            let mut parts = vec![format!("jsonb_typeof({column} -> {key}) = 'array'")];
            for w in wanted {
                if contained_exactly(w) {
                    let document = params.json(json!({ c.key.clone(): [w.clone()] }));
                    parts.push(format!("{column} @> {document}"));
                } else {
                    let eq = equal("e.value", w, params);
                    parts.push(format!(
                        "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN \
                         jsonb_typeof({column} -> {key}) = 'array' THEN {column} -> {key} END) \
                         AS e (value) WHERE {eq})"
                    ));
                }
            }
            format!("({})", parts.join(" AND "))
        }
    })
}
