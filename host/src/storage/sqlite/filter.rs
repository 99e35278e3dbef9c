//! Filters as SQL over a JSON column, so that scoping happens in the query.
//!
//! Equality is type-strict (stored `3` does not match `"3"`), as LangGraph's.
//! The equality on a key is written `json_extract(col, '$.key') = ?`, the
//! exact expression of the `owner` indexes, so SQLite serves the common
//! owner filter from an index.
//!
//! Every key means itself, whatever characters it holds, except one:
//! SQLite ends a JSON object key at U+0000 when it looks a path up, so
//! `$.owner` would read a key `"owner\u0000…"`. Such keys are refused, in
//! filters ([`Where::query`]) and in the documents filters read
//! ([`filterable`]). A client's filter is also bounded
//! (`MAX_CLIENT_TERMS`): SQLite refuses an expression deeper than 1000.

use rusqlite::types::Value as Sql;
use serde_json::Value;

#[cfg(test)]
use crate::storage::checks::MAX_CLIENT_TERMS;
pub(crate) use crate::storage::checks::filterable;
use crate::storage::checks::{bound, client_filter, containment, filter_key};
use crate::storage::{Filter, Object, StorageError};
use warden_types::{Clause, Condition, Operator};

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

    /// Adds the auth plugin's filter on `column`. A filter the database
    /// cannot express is the plugin's fault: a [`StorageError::Filter`].
    pub(crate) fn filter(
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

    /// Adds a client's filter on `column`: a key the database cannot
    /// express, or more than `MAX_CLIENT_TERMS` terms, is a
    /// [`StorageError::BadQuery`] naming it.
    pub(crate) fn query(&mut self, column: &str, filter: &Filter) -> Result<(), StorageError> {
        client_filter(filter)?;
        self.clauses(column, filter)
    }

    /// Adds a client's containment query (`{"k": v}`: key present and
    /// equal), as [`Where::query`].
    pub(crate) fn contains(&mut self, column: &str, object: &Object) -> Result<(), StorageError> {
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
                            ors.push("1".to_owned());
                        } else {
                            ors.push(format!("({})", ands.join(" AND ")));
                        }
                    }
                    if ors.is_empty() {
                        "0".to_owned()
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
    pub(crate) fn sql(&self) -> String {
        if self.parts.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.parts.join(" AND "))
        }
    }
}

/// ` LIMIT l OFFSET o` (see [`bound`]).
pub(crate) fn page_sql(limit: u64, offset: u64) -> String {
    format!(" LIMIT {} OFFSET {}", bound(limit), bound(offset))
}

/// The JSON path of the top-level `key`, as a SQL string literal. A plain
/// key is `'$.key'`, the exact text of the `owner` indexes; any other key
/// (empty, with quotes, dots, brackets, control characters) is quoted as a
/// JSON string, whose escapes SQLite's path syntax reads (`'$."a.b"'`), so
/// every key means itself, as in LangGraph's JSONB containment.
fn path(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        format!("'$.{key}'")
    } else {
        let quoted = Value::from(key).to_string();
        format!("'$.{}'", quoted.replace('\'', "''"))
    }
}

fn condition(column: &str, c: &Condition, params: &mut Vec<Sql>) -> Result<String, StorageError> {
    filter_key(&c.key)?;
    let path = path(&c.key);
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};
    use serde_json::json;

    use super::*;

    /// The ids of the rows of `docs` whose JSON `doc` matches `where_`.
    fn matching(docs: &[Value], where_: &Where) -> rusqlite::Result<Vec<usize>> {
        let conn = rusqlite::Connection::open_in_memory()?;
        conn.execute("CREATE TABLE t (id INTEGER, doc TEXT)", [])?;
        for (id, doc) in docs.iter().enumerate() {
            conn.execute(
                "INSERT INTO t VALUES (?, ?)",
                rusqlite::params![id, doc.to_string()],
            )?;
        }
        let sql = format!("SELECT id FROM t{} ORDER BY id", where_.sql());
        let mut stmt = conn.prepare(&sql)?;
        stmt.query_map(rusqlite::params_from_iter(where_.params.iter()), |r| {
            r.get(0)
        })?
        .collect()
    }

    /// Keys as a client may send them: any characters, weighted towards
    /// those with a meaning in SQL or in SQLite's JSON paths.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z_]{1,3}",
            "[\"'\\\\.\\[\\]$* \\n\\x00-\\x1f]{0,4}",
            any::<String>(),
        ]
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-3i64..3).prop_map(Value::from),
            "[a\"'\\\\]{0,2}".prop_map(Value::from),
        ]
    }

    /// Deterministic unless `PROPTEST_RNG_SEED` says otherwise.
    fn config() -> Config {
        let mut config = Config::default();
        if config.rng_seed == RngSeed::Random {
            config.rng_seed = RngSeed::Fixed(15);
        }
        config.failure_persistence = None;
        config
    }

    proptest! {
        #![proptest_config(config())]

        /// A containment query on any key matches exactly the documents
        /// whose value at that key is the operand, or is refused when the
        /// key has a U+0000; storage refuses such keys in documents too.
        #[test]
        fn any_key_means_itself(
            docs in prop::collection::vec(prop::collection::btree_map(key(), scalar(), 0..4), 1..5),
            probe in key(),
            operand in scalar(),
            pick in any::<prop::sample::Index>(),
        ) {
            let docs: Vec<Object> = docs.into_iter().map(|d| d.into_iter().collect()).collect();
            let (docs, refused): (Vec<Object>, Vec<Object>) =
                docs.into_iter().partition(|d| filterable(d, "metadata").is_ok());
            for doc in refused {
                prop_assert!(doc.keys().any(|k| k.contains('\0')));
            }
            prop_assume!(!docs.is_empty());
            // Half the time, query a key that some document holds.
            let keys: Vec<&String> = docs.iter().flat_map(|d| d.keys()).collect();
            let key = if keys.is_empty() || pick.index(2) == 0 { probe } else { pick.get(&keys).to_string() };
            let mut where_ = Where::default();
            let query: Object = [(key.clone(), operand.clone())].into_iter().collect();
            if key.contains('\0') {
                let refused = where_.contains("doc", &query);
                prop_assert!(matches!(refused, Err(StorageError::BadQuery(_))), "{:?}", refused);
                return Ok(());
            }
            where_.contains("doc", &query).unwrap();
            let expected: Vec<usize> = docs
                .iter()
                .enumerate()
                .filter(|(_, d)| d.get(&key) == Some(&operand))
                .map(|(i, _)| i)
                .collect();
            let docs: Vec<Value> = docs.into_iter().map(Value::Object).collect();
            prop_assert_eq!(matching(&docs, &where_).unwrap(), expected);
        }
    }

    #[test]
    fn a_key_with_u0000_would_read_as_its_prefix_so_it_is_refused() {
        // What SQLite does, and why: `$.owner` reads `"owner\u0000x"`.
        let doc = json!({"owner\u{0}x": "user1", "owner": "user2"});
        let mut by_owner = Where::default();
        by_owner
            .filter("doc", Some(&Filter::eq("owner", "user1")))
            .unwrap();
        assert_eq!(
            matching(std::slice::from_ref(&doc), &by_owner).unwrap(),
            [0]
        );
        let doc = doc.as_object().unwrap();
        let Err(StorageError::BadQuery(detail)) = filterable(doc, "metadata") else {
            panic!("accepted");
        };
        assert_eq!(
            detail,
            "Unsupported key in metadata: \"owner\\u0000x\": a key cannot contain the character U+0000"
        );
        // In a plugin's filter, the plugin is at fault.
        let mut plugin = Where::default();
        let refused = plugin.filter("doc", Some(&Filter::eq("owner\u{0}", "user1")));
        assert!(
            matches!(refused, Err(StorageError::Filter(_))),
            "{refused:?}"
        );
    }

    #[test]
    fn a_client_filter_is_bounded_below_sqlites_expression_depth() {
        let many = |n: usize| -> Object { (0..n).map(|i| (format!("k{i}"), json!(i))).collect() };
        let mut at_most = Where::default();
        at_most.contains("doc", &many(MAX_CLIENT_TERMS)).unwrap();
        assert_eq!(
            matching(&[json!({"k0": 0})], &at_most).unwrap(),
            [] as [usize; 0]
        );
        let Err(StorageError::BadQuery(detail)) = Where::default().contains("doc", &many(2000))
        else {
            panic!("accepted");
        };
        assert_eq!(detail, "Filter too large: 2000 conditions (at most 100)");
        let items: Vec<Value> = (0..=MAX_CLIENT_TERMS).map(Value::from).collect();
        let refused = Where::default().query("doc", &Filter::contains("tags", items));
        assert!(
            matches!(refused, Err(StorageError::BadQuery(_))),
            "{refused:?}"
        );
    }

    #[test]
    fn plain_keys_keep_the_text_of_the_owner_index() {
        assert_eq!(path("owner"), "'$.owner'");
        assert_eq!(path(""), "'$.\"\"'");
        assert_eq!(path("it's"), "'$.\"it''s\"'");
        assert_eq!(path("a\"b\\"), "'$.\"a\\\"b\\\\\"'");
    }
}
