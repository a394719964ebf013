//! JSON field selectors in insta's redaction syntax (`.results[].published_at`, `.**.token`,
//! `.*`, `[0]`, `["a key"]`), used by routes to redact fields that may legitimately differ.
//!
//! It parses selectors and rewrites matching values; it decides nothing about what to redact.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
    /// `[]`: every element of an array.
    AllElements,
    /// `.*`: every value of an object, one level.
    AnyKey,
    /// `.**`: any depth, including none.
    AnyDepth,
}

/// A parsed selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    source: String,
    steps: Vec<Step>,
}

/// A selector that does not parse, and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{selector}` is not a selector: {reason} (write e.g. `.results[].published_at`)")]
pub struct SelectorError {
    selector: String,
    reason: &'static str,
}

impl Selector {
    /// Parses insta's selector syntax (`.results[].published_at`).
    pub fn parse(source: &str) -> Result<Self, SelectorError> {
        let fail = |reason| SelectorError {
            selector: source.to_owned(),
            reason,
        };
        let mut steps = Vec::new();
        let mut rest = source;
        if rest.is_empty() {
            return Err(fail("it is empty"));
        }
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix(".**") {
                steps.push(Step::AnyDepth);
                rest = after;
            } else if let Some(after) = rest.strip_prefix(".*") {
                steps.push(Step::AnyKey);
                rest = after;
            } else if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                if end == 0 {
                    return Err(fail("a `.` must be followed by a key"));
                }
                steps.push(Step::Key(after[..end].to_owned()));
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix("[]") {
                steps.push(Step::AllElements);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("[\"") {
                let end = after
                    .find("\"]")
                    .ok_or_else(|| fail("a `[\"` is not closed"))?;
                steps.push(Step::Key(after[..end].to_owned()));
                rest = &after[end + 2..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = after.find(']').ok_or_else(|| fail("a `[` is not closed"))?;
                let index = after[..end]
                    .parse()
                    .map_err(|_| fail("an index must be a number"))?;
                steps.push(Step::Index(index));
                rest = &after[end + 1..];
            } else {
                return Err(fail("it must start with `.` or `[`"));
            }
        }
        Ok(Self {
            source: source.to_owned(),
            steps,
        })
    }

    /// The selector as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Replaces every value the selector reaches with `replacement`; returns how many.
    pub fn redact(&self, value: &mut Value, replacement: &Value) -> usize {
        redact(&self.steps, value, replacement)
    }
}

fn redact(steps: &[Step], value: &mut Value, replacement: &Value) -> usize {
    let Some((step, rest)) = steps.split_first() else {
        *value = replacement.clone();
        return 1;
    };
    match (step, value) {
        (Step::Key(key), Value::Object(map)) => {
            map.get_mut(key).map_or(0, |v| redact(rest, v, replacement))
        }
        (Step::Index(i), Value::Array(items)) => items
            .get_mut(*i)
            .map_or(0, |v| redact(rest, v, replacement)),
        (Step::AllElements, Value::Array(items)) => {
            items.iter_mut().map(|v| redact(rest, v, replacement)).sum()
        }
        (Step::AnyKey, Value::Object(map)) => {
            map.values_mut().map(|v| redact(rest, v, replacement)).sum()
        }
        (Step::AnyDepth, value) => {
            // Here, or below: try the rest at this level, then descend keeping `.**`.
            let here = if rest.is_empty() {
                0
            } else {
                redact(rest, value, replacement)
            };
            let below: usize = match value {
                Value::Object(map) => map
                    .values_mut()
                    .map(|v| redact(steps, v, replacement))
                    .sum(),
                Value::Array(items) => items
                    .iter_mut()
                    .map(|v| redact(steps, v, replacement))
                    .sum(),
                _ => 0,
            };
            here + below
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn redacted(selector: &str, mut value: Value) -> (Value, usize) {
        let n = Selector::parse(selector)
            .unwrap()
            .redact(&mut value, &json!("[redacted]"));
        (value, n)
    }

    #[test]
    fn key_paths_and_all_elements_reach_nested_fields() {
        let (value, n) = redacted(
            ".results[].published_at",
            json!({"results": [{"published_at": 1, "id": 1}, {"published_at": 2, "id": 2}]}),
        );
        assert_eq!(n, 2);
        assert_eq!(
            value,
            json!({"results": [{"published_at": "[redacted]", "id": 1}, {"published_at": "[redacted]", "id": 2}]})
        );
    }

    #[test]
    fn index_quoted_key_and_any_key_select_what_insta_selects() {
        assert_eq!(
            redacted(".a[1]", json!({"a": [1, 2, 3]})).0,
            json!({"a": [1, "[redacted]", 3]})
        );
        assert_eq!(
            redacted("[\"a b\"]", json!({"a b": 1})).0,
            json!({"a b": "[redacted]"})
        );
        assert_eq!(
            redacted(".*.t", json!({"x": {"t": 1}, "y": {"t": 2, "u": 3}})).0,
            json!({"x": {"t": "[redacted]"}, "y": {"t": "[redacted]", "u": 3}})
        );
    }

    #[test]
    fn any_depth_finds_a_key_at_every_level() {
        let (value, n) = redacted(
            ".**.token",
            json!({"token": 1, "a": [{"token": 2}, {"b": {"token": 3}}]}),
        );
        assert_eq!(n, 3);
        assert_eq!(
            value,
            json!({"token": "[redacted]", "a": [{"token": "[redacted]"}, {"b": {"token": "[redacted]"}}]})
        );
    }

    #[test]
    fn missing_fields_are_left_alone() {
        assert_eq!(
            redacted(".nope.deeper", json!({"a": 1})),
            (json!({"a": 1}), 0)
        );
    }

    #[test]
    fn malformed_selectors_are_refused_with_a_reason() {
        for bad in ["", "results", ".", ".a[", ".a[x]", "[\"a"] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Selector::parse("a").unwrap_err().to_string(),
            "`a` is not a selector: it must start with `.` or `[` (write e.g. `.results[].published_at`)"
        );
    }
}
