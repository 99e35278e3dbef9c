//! Filters that scope reads, searches, updates and deletes to what a user may see.

use serde::Serialize;
use serde_json::{Map, Value, json};

/// A filter operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `$eq`: the metadata key is present and equal to the operand.
    Eq,
    /// `$contains`: the metadata key is a list holding the operand (all of
    /// its items, for a list operand).
    Contains,
}

/// A serializable value as JSON.
///
/// # Panics
/// When the value cannot be represented as JSON (a map with non-string keys).
fn to_json(value: impl Serialize) -> Value {
    serde_json::to_value(value).expect("the value is representable as JSON")
}

/// One condition on a top-level metadata key.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The metadata key.
    pub key: String,
    /// The operator.
    pub op: Operator,
    /// The operand.
    pub operand: Value,
}

impl Condition {
    /// Whether `metadata` satisfies the condition (type-strict, as LangGraph).
    pub fn matches(&self, metadata: &Map<String, Value>) -> bool {
        let Some(stored) = metadata.get(&self.key) else {
            return false;
        };
        match self.op {
            Operator::Eq => stored == &self.operand,
            Operator::Contains => match (stored, &self.operand) {
                (Value::Array(items), Value::Array(wanted)) => {
                    wanted.iter().all(|w| items.contains(w))
                }
                (Value::Array(items), wanted) => items.contains(wanted),
                _ => false,
            },
        }
    }

    /// The condition's value in LangGraph's dict syntax: the operand for
    /// equality (unless it is an object), else `{"$op": operand}`.
    fn json_value(&self) -> Value {
        match (self.op, &self.operand) {
            (Operator::Eq, Value::Object(_)) => json!({"$eq": self.operand}),
            (Operator::Eq, operand) => operand.clone(),
            (Operator::Contains, operand) => json!({"$contains": operand}),
        }
    }
}

/// One clause of a [`Filter`].
#[derive(Debug, Clone, PartialEq)]
pub enum Clause {
    /// A single condition.
    Condition(Condition),
    /// At least one branch holds; each branch is a conjunction of conditions.
    AnyOf(Vec<Vec<Condition>>),
}

/// A filter over a resource's metadata: every clause must hold.
///
/// The Rust form of LangGraph's filter dicts: `{"owner": id}` is
/// `Filter::eq("owner", id)`, several keys are [`Filter::and`], and `$or` is
/// [`Filter::any_of`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    /// The clauses, AND-ed.
    pub clauses: Vec<Clause>,
}

impl Filter {
    fn condition(key: impl Into<String>, op: Operator, operand: impl Serialize) -> Self {
        Self {
            clauses: vec![Clause::Condition(Condition {
                key: key.into(),
                op,
                operand: to_json(operand),
            })],
        }
    }

    /// `{key: value}`: the metadata key equals `value` (any serializable
    /// value: `&str`, `&String`, numbers, `json!(...)`).
    pub fn eq(key: impl Into<String>, value: impl Serialize) -> Self {
        Self::condition(key, Operator::Eq, value)
    }

    /// `{key: {"$contains": value}}`: the metadata key is a list containing
    /// `value` (every item of it, when `value` is a list).
    pub fn contains(key: impl Into<String>, value: impl Serialize) -> Self {
        Self::condition(key, Operator::Contains, value)
    }

    /// Both filters must hold.
    pub fn and(mut self, other: Filter) -> Self {
        self.clauses.extend(other.clauses);
        self
    }

    /// `{"$or": [...]}`: at least one of the branches holds.
    ///
    /// # Panics
    /// When a branch itself holds an `any_of` (LangGraph allows two levels
    /// of nesting), or when there are fewer than two branches.
    pub fn any_of(branches: impl IntoIterator<Item = Filter>) -> Self {
        let branches: Vec<Vec<Condition>> = branches
            .into_iter()
            .map(|branch| {
                branch
                    .clauses
                    .into_iter()
                    .map(|clause| match clause {
                        Clause::Condition(c) => c,
                        Clause::AnyOf(_) => panic!("Filter::any_of: too many nested operators"),
                    })
                    .collect()
            })
            .collect();
        assert!(
            branches.len() >= 2,
            "Filter::any_of needs at least two branches"
        );
        Self {
            clauses: vec![Clause::AnyOf(branches)],
        }
    }

    /// Whether `metadata` satisfies the filter, as the host's store applies it.
    pub fn matches(&self, metadata: &Map<String, Value>) -> bool {
        self.clauses.iter().all(|clause| match clause {
            Clause::Condition(c) => c.matches(metadata),
            Clause::AnyOf(branches) => branches
                .iter()
                .any(|branch| branch.iter().all(|c| c.matches(metadata))),
        })
    }

    /// The filter in LangGraph's dict syntax, e.g. `{"owner": "user1"}` or
    /// `{"org": "x", "$or": [{"owner": "u1"}, {"public": true}]}`.
    pub fn to_json(&self) -> Value {
        fn conjunction<'a>(
            conditions: impl IntoIterator<Item = &'a Condition>,
        ) -> Option<Map<String, Value>> {
            let mut out = Map::new();
            for c in conditions {
                if out.insert(c.key.clone(), c.json_value()).is_some() {
                    return None;
                }
            }
            Some(out)
        }
        fn branch(conditions: &[Condition]) -> Value {
            match conjunction(conditions) {
                Some(map) => Value::Object(map),
                None => json!({"$and": conditions
                    .iter()
                    .map(|c| json!({ c.key.clone(): c.json_value() }))
                    .collect::<Vec<_>>()}),
            }
        }
        fn clause(clause: &Clause) -> (String, Value) {
            match clause {
                Clause::Condition(c) => (c.key.clone(), c.json_value()),
                Clause::AnyOf(branches) => (
                    "$or".to_owned(),
                    Value::Array(branches.iter().map(|b| branch(b)).collect()),
                ),
            }
        }
        let mut merged = Map::new();
        for (key, value) in self.clauses.iter().map(clause) {
            if merged.insert(key, value).is_some() {
                // A key appears twice: spell the conjunction out.
                let parts = self.clauses.iter().map(|c| {
                    let (k, v) = clause(c);
                    json!({ k: v })
                });
                return json!({"$and": parts.collect::<Vec<_>>()});
            }
        }
        Value::Object(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn eq_is_type_strict_and_needs_the_key() {
        let f = Filter::eq("n", 3);
        assert!(f.matches(&meta(json!({"n": 3}))));
        assert!(!f.matches(&meta(json!({"n": "3"}))));
        assert!(!f.matches(&meta(json!({}))));
    }

    #[test]
    fn contains_takes_a_scalar_or_a_subset() {
        let m = meta(json!({"tags": ["a", "b", "c"]}));
        assert!(Filter::contains("tags", "b").matches(&m));
        assert!(Filter::contains("tags", json!(["c", "a"])).matches(&m));
        assert!(!Filter::contains("tags", json!(["a", "z"])).matches(&m));
        assert!(!Filter::contains("tags", "a").matches(&meta(json!({"tags": "a"}))));
    }

    #[test]
    fn and_and_any_of_combine() {
        let f = Filter::eq("org", "x").and(Filter::any_of([
            Filter::eq("owner", "u1"),
            Filter::eq("public", true),
        ]));
        assert!(f.matches(&meta(json!({"org": "x", "public": true}))));
        assert!(f.matches(&meta(json!({"org": "x", "owner": "u1"}))));
        assert!(!f.matches(&meta(json!({"org": "y", "owner": "u1"}))));
    }

    #[test]
    fn to_json_uses_langgraph_syntax() {
        assert_eq!(Filter::eq("owner", "u1").to_json(), json!({"owner": "u1"}));
        let f = Filter::eq("org", "x").and(Filter::any_of([
            Filter::eq("owner", "u1"),
            Filter::contains("tags", "t").and(Filter::eq("cfg", json!({"a": 1}))),
        ]));
        assert_eq!(
            f.to_json(),
            json!({"org": "x", "$or": [
                {"owner": "u1"},
                {"tags": {"$contains": "t"}, "cfg": {"$eq": {"a": 1}}}
            ]})
        );
        let twice = Filter::eq("k", 1).and(Filter::contains("k", 2));
        assert_eq!(
            twice.to_json(),
            json!({"$and": [{"k": 1}, {"k": {"$contains": 2}}]})
        );
        assert_eq!(Filter::default().to_json(), json!({}));
    }

    #[test]
    #[should_panic(expected = "too many nested operators")]
    fn any_of_refuses_a_third_level() {
        let inner = Filter::any_of([Filter::eq("a", 1), Filter::eq("b", 2)]);
        Filter::any_of([inner, Filter::eq("c", 3)]);
    }
}
