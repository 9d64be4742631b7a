//! ResultYAML: the results document tasks produce and the `resultsdb`, `exitcode` and `xunit`
//! directives consume (reference/taskotron.md §3.1, libtaskotron's `check.py`).
//!
//! ```yaml
//! results:
//!   - item: xchat-0.5-1.fc20
//!     type: koji_build
//!     checkname: mytest
//!     outcome: PASSED          # NEEDS_INSPECTION when unset
//!     note: 5 ERRORS
//!     artifact: output.log     # relative to the artifacts dir
//!     any_other_key: value     # a keyval (ResultsDB extra data)
//! ```
//! [`import_yaml`] and [`export_yaml`] follow `check.import_YAML` / `check.export_YAML`:
//! empty input is no results, `results: null` is an empty list, keys are emitted sorted.

use serde_json::{Map, Value};
use std::fmt;

/// Keys with a fixed meaning; every other key of a result is a keyval.
pub const RESERVED_KEYS: &[&str] = &[
    "item",
    "type",
    "outcome",
    "note",
    "results",
    "checkname",
    "artifact",
    "_internal",
];

/// A result outcome, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Passed,
    Info,
    Failed,
    NeedsInspection,
    Aborted,
    Crashed,
}

impl Outcome {
    /// All outcomes, least severe first.
    pub const ALL: [Outcome; 6] = [
        Outcome::Passed,
        Outcome::Info,
        Outcome::Failed,
        Outcome::NeedsInspection,
        Outcome::Aborted,
        Outcome::Crashed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "PASSED",
            Outcome::Info => "INFO",
            Outcome::Failed => "FAILED",
            Outcome::NeedsInspection => "NEEDS_INSPECTION",
            Outcome::Aborted => "ABORTED",
            Outcome::Crashed => "CRASHED",
        }
    }

    /// Parses an outcome name (exact, upper case, as CheckDetail requires).
    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// PASSED and INFO count as success (for `exitcode`).
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Passed | Outcome::Info)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One result (libtaskotron's `CheckDetail`).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckDetail {
    pub item: Option<String>,
    /// The `type` key (item type, e.g. `koji_build`).
    pub report_type: Option<String>,
    pub outcome: Outcome,
    pub note: String,
    pub checkname: Option<String>,
    pub artifact: Option<String>,
    /// Extra keys, stored by ResultsDB as result data.
    pub keyvals: Map<String, Value>,
    /// Runner bookkeeping (e.g. `resultsdb_result_id`), exported when non-empty.
    pub internal: Map<String, Value>,
}

impl CheckDetail {
    pub fn new(item: Option<String>, report_type: Option<String>, outcome: Outcome) -> Self {
        CheckDetail {
            item,
            report_type,
            outcome,
            note: String::new(),
            checkname: None,
            artifact: None,
            keyvals: Map::new(),
            internal: Map::new(),
        }
    }
}

/// Why a ResultYAML document was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResultYamlError {
    #[error("ResultYAML is not valid YAML: {0}")]
    Yaml(String),
    #[error("ResultYAML structure is not as expected: {0}")]
    Structure(String),
    #[error("ResultYAML results[{index}].outcome: `{value}` is not one of PASSED, INFO, FAILED, NEEDS_INSPECTION, ABORTED, CRASHED")]
    Outcome { index: usize, value: String },
}

/// Parses ResultYAML text (`check.import_YAML`).
pub fn import_yaml(text: &str) -> Result<Vec<CheckDetail>, ResultYamlError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)
        .map_err(|e| ResultYamlError::Yaml(one_line(&e.to_string())))?;
    let doc: Value = serde_json::to_value(&yaml)
        .map_err(|e| ResultYamlError::Structure(one_line(&e.to_string())))?;
    import_value(&doc)
}

/// Interprets an already parsed document (`{results: [...]}`).
pub fn import_value(doc: &Value) -> Result<Vec<CheckDetail>, ResultYamlError> {
    let map = doc.as_object().ok_or_else(|| {
        ResultYamlError::Structure("the document must be a mapping with a `results` key".into())
    })?;
    let results = match map.get("results") {
        None => {
            return Err(ResultYamlError::Structure(
                "the document has no `results` key".into(),
            ))
        }
        Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(ResultYamlError::Structure(
                "`results` must be a list".into(),
            ))
        }
    };
    results
        .iter()
        .enumerate()
        .map(|(i, r)| import_one(i, r))
        .collect()
}

fn import_one(index: usize, v: &Value) -> Result<CheckDetail, ResultYamlError> {
    let map = v
        .as_object()
        .ok_or_else(|| ResultYamlError::Structure(format!("results[{index}] must be a mapping")))?;
    let text = |key: &str| -> Option<String> {
        match map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(crate::template::python_str(other)),
        }
    };
    let outcome = match text("outcome") {
        None => Outcome::NeedsInspection,
        Some(s) => Outcome::parse(&s).ok_or(ResultYamlError::Outcome { index, value: s })?,
    };
    let mut detail = CheckDetail::new(text("item"), text("type"), outcome);
    detail.note = text("note").unwrap_or_default();
    detail.checkname = text("checkname");
    detail.artifact = text("artifact");
    for (k, v) in map {
        if !RESERVED_KEYS.contains(&k.as_str()) {
            detail.keyvals.insert(k.clone(), v.clone());
        }
    }
    if let Some(Value::Object(internal)) = map.get("_internal") {
        detail.internal = internal.clone();
    }
    Ok(detail)
}

/// One result as a mapping with sorted keys (as `yaml.safe_dump` writes them). `item` and
/// `outcome` are always present, the other keys only when set.
pub fn detail_to_value(d: &CheckDetail) -> Value {
    let mut m = std::collections::BTreeMap::new();
    let opt = |s: &Option<String>| s.clone().map(Value::String).unwrap_or(Value::Null);
    m.insert("item".to_string(), opt(&d.item));
    if let Some(t) = &d.report_type {
        m.insert("type".to_string(), Value::String(t.clone()));
    }
    m.insert("outcome".to_string(), Value::String(d.outcome.to_string()));
    if !d.note.is_empty() {
        m.insert("note".to_string(), Value::String(d.note.clone()));
    }
    if let Some(c) = &d.checkname {
        m.insert("checkname".to_string(), Value::String(c.clone()));
    }
    if let Some(a) = &d.artifact {
        m.insert("artifact".to_string(), Value::String(a.clone()));
    }
    if !d.internal.is_empty() {
        m.insert(
            "_internal".to_string(),
            sorted(&Value::Object(d.internal.clone())),
        );
    }
    for (k, v) in &d.keyvals {
        // Reserved names cannot be keyvals; libtaskotron drops them with a warning.
        if !RESERVED_KEYS.contains(&k.as_str()) {
            m.insert(k.clone(), sorted(v));
        }
    }
    Value::Object(m.into_iter().collect())
}

/// Recursively sorts mapping keys (our JSON maps keep insertion order).
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Emits ResultYAML (`check.export_YAML`): `results:` with one sorted mapping per detail.
pub fn export_yaml(details: &[CheckDetail]) -> String {
    let results: Vec<Value> = details.iter().map(detail_to_value).collect();
    let mut doc = Map::new();
    doc.insert("results".to_string(), Value::Array(results));
    // Serialising a JSON value cannot fail (all keys are strings).
    serde_yaml_ng::to_string(&Value::Object(doc)).unwrap_or_default()
}

/// `"3 PASSED, 1 INFO, 2 FAILED"`: counts per outcome, least severe first, zero counts left
/// out (`CheckDetail.create_multi_item_summary`).
pub fn summary<I: IntoIterator<Item = Outcome>>(outcomes: I) -> String {
    let mut counts = [0usize; 6];
    for o in outcomes {
        counts[o as usize] += 1;
    }
    Outcome::ALL
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|(o, n)| format!("{n} {o}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcome_order_and_success() {
        assert!(Outcome::Passed < Outcome::Info && Outcome::Aborted < Outcome::Crashed);
        assert!(Outcome::Info.is_success() && !Outcome::Failed.is_success());
        assert_eq!(
            Outcome::parse("NEEDS_INSPECTION"),
            Some(Outcome::NeedsInspection)
        );
        assert_eq!(Outcome::parse("passed"), None);
    }

    #[test]
    fn import_rules() {
        assert!(import_yaml("").unwrap().is_empty());
        assert!(import_yaml("results:").unwrap().is_empty());
        let d = import_yaml("results:\n- item: a-1-1\n  type: koji_build\n  arch: x86_64\n  note: n\n  _internal: {x: 1}\n").unwrap();
        assert_eq!(d[0].outcome, Outcome::NeedsInspection);
        assert_eq!(
            d[0].keyvals,
            json!({"arch": "x86_64"}).as_object().cloned().unwrap()
        );
        assert_eq!(d[0].internal["x"], json!(1));
        assert!(matches!(
            import_yaml("results: 3"),
            Err(ResultYamlError::Structure(_))
        ));
        assert!(matches!(
            import_yaml("- a"),
            Err(ResultYamlError::Structure(_))
        ));
        assert!(matches!(
            import_yaml("foo: 1"),
            Err(ResultYamlError::Structure(_))
        ));
        assert!(matches!(
            import_yaml("results: ["),
            Err(ResultYamlError::Yaml(_))
        ));
        let e = import_yaml("results: [{item: a, outcome: OK}]").unwrap_err();
        assert!(e.to_string().contains("results[0].outcome: `OK`"), "{e}");
    }

    #[test]
    fn export_sorted_and_round_trips() {
        let mut d = CheckDetail::new(
            Some("a-1-1".into()),
            Some("koji_build".into()),
            Outcome::Failed,
        );
        d.checkname = Some("t".into());
        d.keyvals.insert("zeta".into(), json!({"b": 1, "a": 2}));
        d.keyvals.insert("arch".into(), json!("x86_64"));
        d.keyvals.insert("item".into(), json!("dropped"));
        let text = export_yaml(&[d.clone()]);
        assert_eq!(
            text,
            "results:\n- arch: x86_64\n  checkname: t\n  item: a-1-1\n  outcome: FAILED\n  type: koji_build\n  zeta:\n    a: 2\n    b: 1\n"
        );
        let back = import_yaml(&text).unwrap();
        d.keyvals.remove("item");
        assert_eq!(back[0].outcome, d.outcome);
        assert_eq!(back[0].keyvals.len(), 2);
    }

    #[test]
    fn summary_counts() {
        use Outcome::*;
        assert_eq!(
            summary([Failed, Passed, Passed, Info, Failed]),
            "2 PASSED, 1 INFO, 2 FAILED"
        );
        assert_eq!(summary([]), "");
    }
}
