//! Filters as SQL over a JSON column, so that scoping happens in the query.
//!
//! Equality is type-strict (stored `3` does not match `"3"`), as LangGraph's.
//! The equality on a key is written `json_extract(col, '$.key') = ?`, the
//! exact expression of the `owner` indexes, so SQLite serves the common
//! owner filter from an index.

use rusqlite::types::Value as Sql;
use serde_json::Value;

use super::{Filter, Object, StorageError};
use warden_sdk::{Clause, Condition, Operator};

/// SQL conditions and their parameters, AND-ed.
#[derive(Debug, Default)]
pub(crate) struct Where {
    parts: Vec<String>,
    /// The bound parameters, in order.
    pub(crate) params: Vec<Sql>,
}

impl Where {
    /// Adds a raw condition with its parameters.
    pub(crate) fn push(&mut self, sql: impl Into<String>, params: impl IntoIterator<Item = Sql>) {
        self.parts.push(sql.into());
        self.params.extend(params);
    }

    /// Adds the plugin's filter on `column`.
    pub(crate) fn filter(
        &mut self,
        column: &str,
        filter: Option<&Filter>,
    ) -> Result<(), StorageError> {
        for clause in filter.map(|f| f.clauses.as_slice()).unwrap_or_default() {
            let sql = match clause {
                Clause::Condition(c) => condition(column, c, &mut self.params)?,
                Clause::AnyOf(branches) => {
                    let mut ors = Vec::with_capacity(branches.len());
                    for branch in branches {
                        let ands = branch
                            .iter()
                            .map(|c| condition(column, c, &mut self.params))
                            .collect::<Result<Vec<_>, _>>()?;
                        ors.push(format!("({})", ands.join(" AND ")));
                    }
                    format!("({})", ors.join(" OR "))
                }
            };
            self.parts.push(sql);
        }
        Ok(())
    }

    /// Adds a client's containment query (`{"k": v}`: key present and equal).
    pub(crate) fn contains(&mut self, column: &str, object: &Object) -> Result<(), StorageError> {
        for (key, operand) in object {
            let c = Condition {
                key: key.clone(),
                op: Operator::Eq,
                operand: operand.clone(),
            };
            let sql = condition(column, &c, &mut self.params)?;
            self.parts.push(sql);
        }
        Ok(())
    }

    /// ` WHERE ...`, or nothing.
    pub(crate) fn sql(&self) -> String {
        if self.parts.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.parts.join(" AND "))
        }
    }
}

/// `'$.key'` (or `'$."key"'`) as a SQL string literal.
fn path(key: &str) -> Result<String, StorageError> {
    if key.contains(['"', '\'']) || key.is_empty() {
        return Err(StorageError::Filter(format!("key {key:?}")));
    }
    Ok(
        if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            format!("'$.{key}'")
        } else {
            format!("'$.\"{key}\"'")
        },
    )
}

fn condition(column: &str, c: &Condition, params: &mut Vec<Sql>) -> Result<String, StorageError> {
    let path = path(&c.key)?;
    Ok(match c.op {
        Operator::Eq => {
            let extract = format!("json_extract({column}, {path})");
            let ty = format!("json_type({column}, {path})");
            equal(&extract, &ty, &c.operand, params)
        }
        Operator::Contains => {
            let wanted: Vec<&Value> = match &c.operand {
                Value::Array(items) => items.iter().collect(),
                one => vec![one],
            };
            let mut parts = vec![format!("json_type({column}, {path}) = 'array'")];
            for w in wanted {
                let eq = equal("e.value", "e.type", w, params);
                parts.push(format!(
                    "EXISTS (SELECT 1 FROM json_each({column}, {path}) AS e WHERE {eq})"
                ));
            }
            format!("({})", parts.join(" AND "))
        }
    })
}

/// Type-strict equality of a JSON value (`extract`, its JSON type `ty`) and `operand`.
fn equal(extract: &str, ty: &str, operand: &Value, params: &mut Vec<Sql>) -> String {
    match operand {
        Value::Null => format!("{ty} = 'null'"),
        Value::Bool(true) => format!("{ty} = 'true'"),
        Value::Bool(false) => format!("{ty} = 'false'"),
        Value::String(s) => {
            params.push(Sql::Text(s.clone()));
            format!("({extract} = ? AND {ty} = 'text')")
        }
        Value::Number(n) => match n.as_i64() {
            Some(i) => {
                params.push(Sql::Integer(i));
                format!("({extract} = ? AND {ty} = 'integer')")
            }
            None => {
                params.push(Sql::Real(n.as_f64().unwrap_or(f64::NAN)));
                format!("({extract} = ? AND {ty} IN ('integer', 'real'))")
            }
        },
        Value::Array(_) | Value::Object(_) => {
            params.push(Sql::Text(operand.to_string()));
            format!("({extract} = json(?) AND {ty} IN ('array', 'object'))")
        }
    }
}
