//! Taskotron's `trigger_rules.yml`: a template (filled with the message data), then a YAML list
//! of `{when: <query>, do: [<reaction>...]}`. Every rule whose `when` matches fires.
//!
//! Rendering and compiling per message would be slow, so compiled rules are cached by the
//! values of the placeholders the template actually uses; a template without placeholders is
//! compiled exactly once.

pub mod query;
pub mod reactions;
pub mod regex;
pub mod template;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;

pub use query::Query;
pub use reactions::{DiscoverSpec, Reaction, What};

use crate::jobtriggers::MessageData;

/// A rules file that cannot be used, with the rule index and reason.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RulesError {
    #[error("{origin}: cannot read: {reason}")]
    Read { origin: String, reason: String },
    #[error("{origin}: not valid YAML: {reason}")]
    Yaml { origin: String, reason: String },
    #[error("{origin}: expected a list of rules ({{when: ..., do: [...]}})")]
    NotAList { origin: String },
    #[error("{origin}: rule {index}: {reason}")]
    Rule {
        origin: String,
        index: usize,
        reason: String,
    },
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Position in the file, from 0.
    pub index: usize,
    pub when: Query,
    pub reactions: Vec<Reaction>,
}

/// A loaded rules template.
pub struct RuleSet {
    origin: String,
    template: String,
    placeholders: Vec<String>,
    /// Rules compiled from the template with no substitution (used when the message data has
    /// none of the placeholders, and to validate the file).
    neutral: Arc<Vec<Rule>>,
    cache: Mutex<HashMap<CacheKey, Arc<Vec<Rule>>>>,
}

const CACHE_LIMIT: usize = 4096;

/// The rendered values of the template's placeholders (None: not in the message data).
type CacheKey = Vec<Option<String>>;

impl RuleSet {
    pub fn load(path: &Path) -> Result<RuleSet, RulesError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| RulesError::Read {
            origin: origin.clone(),
            reason: e.to_string(),
        })?;
        RuleSet::parse(&text, &origin)
    }

    /// Checks and compiles a template; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<RuleSet, RulesError> {
        let neutral = compile(&template::safe_substitute(text, |_| None), origin)?;
        Ok(RuleSet {
            origin: origin.to_string(),
            template: text.to_string(),
            placeholders: template::placeholders(text),
            neutral: Arc::new(neutral),
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn rules_count(&self) -> usize {
        self.neutral.len()
    }

    /// The rules as rendered for this message data.
    pub fn rules_for(&self, data: &MessageData) -> Result<Arc<Vec<Rule>>, RulesError> {
        let key: Vec<Option<String>> = self
            .placeholders
            .iter()
            .map(|p| data.get(p).map(template::py_str))
            .collect();
        if key.iter().all(Option::is_none) {
            return Ok(self.neutral.clone());
        }
        if let Some(r) = self.cache.lock().map_err(|_| self.poisoned())?.get(&key) {
            return Ok(r.clone());
        }
        let rendered = template::safe_substitute(&self.template, |name| {
            self.placeholders
                .iter()
                .position(|p| p == name)
                .and_then(|i| key[i].clone())
        });
        let rules = Arc::new(compile(&rendered, &self.origin)?);
        let mut cache = self.cache.lock().map_err(|_| self.poisoned())?;
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, rules.clone());
        Ok(rules)
    }

    fn poisoned(&self) -> RulesError {
        RulesError::Read {
            origin: self.origin.clone(),
            reason: "rules cache lock poisoned".into(),
        }
    }

    /// The reactions of every matching rule, in file order, with the rule index.
    pub fn evaluate(&self, data: &MessageData) -> Result<Vec<(usize, Reaction)>, RulesError> {
        let rules = self.rules_for(data)?;
        let doc = Value::Object(data.clone());
        Ok(rules
            .iter()
            .filter(|r| r.when.matches(&doc))
            .flat_map(|r| r.reactions.iter().map(move |x| (r.index, x.clone())))
            .collect())
    }
}

/// YAML to JSON-shaped data; non-string keys become their YAML text.
pub(crate) fn yaml_to_json(v: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into()
            } else if let Some(u) = n.as_u64() {
                u.into()
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(s) => Value::Array(s.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => serde_yaml_ng::to_string(&other)
                            .map(|s| s.trim_end().to_string())
                            .unwrap_or_default(),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(t) => yaml_to_json(t.value),
    }
}

fn compile(text: &str, origin: &str) -> Result<Vec<Rule>, RulesError> {
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| RulesError::Yaml {
            origin: origin.to_string(),
            reason: e.to_string(),
        })?;
    let list = match yaml_to_json(yaml) {
        Value::Array(a) => a,
        Value::Null => vec![],
        _ => {
            return Err(RulesError::NotAList {
                origin: origin.to_string(),
            })
        }
    };
    list.iter()
        .enumerate()
        .map(|(index, r)| {
            compile_rule(index, r).map_err(|reason| RulesError::Rule {
                origin: origin.to_string(),
                index,
                reason,
            })
        })
        .collect()
}

fn compile_rule(index: usize, r: &Value) -> Result<Rule, String> {
    let m = r
        .as_object()
        .ok_or("expected a mapping with `when` and `do`")?;
    for k in m.keys() {
        if k != "when" && k != "do" {
            return Err(format!("unknown key {k:?} (expected `when` and `do`)"));
        }
    }
    let when = m.get("when").ok_or("missing `when`")?;
    let when = Query::compile_value(when, "when").map_err(|e| e.to_string())?;
    let reactions = m
        .get("do")
        .ok_or("missing `do`")?
        .as_array()
        .ok_or("do: expected a list of reactions")?
        .iter()
        .enumerate()
        .map(|(i, x)| Reaction::parse(x).map_err(|e| format!("do[{i}]: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Rule {
        index,
        when,
        reactions,
    })
}
