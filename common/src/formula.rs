//! The task formula (`runtask.yml`): model, parsing and structural validation.
//!
//! Format: reference/taskotron.md §1. Top-level keys `name`, `desc`, `maintainer` (required),
//! `namespace`, `input: {args: [...]}`, `environment: {rpm: [...], ...}` and `actions` (a list of
//! mappings with `name`, exactly one directive key and an optional `export`).
//!
//! Parsing checks structure only. Whether a directive name exists, and what its parameters
//! mean, is up to the runner (`worker::runtask::directives`). Every error is one line naming the
//! file and the field, e.g. `task.yml: actions[2]: unknown key ...`.

use serde_json::Value;
use std::path::Path;

/// A parsed task formula.
#[derive(Debug, Clone, PartialEq)]
pub struct Formula {
    pub name: String,
    pub desc: String,
    pub maintainer: String,
    /// ResultsDB namespace (`dist`, `pkg`, `scratch`, ...), if the formula sets one.
    pub namespace: Option<String>,
    /// Variables the task needs (`input.args`), checked by the runner before anything runs.
    pub input_args: Vec<String>,
    pub environment: Environment,
    pub actions: Vec<Action>,
}

/// The `environment` block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Environment {
    /// RPM dependencies: names, file paths or anything `dnf install` accepts.
    pub rpm: Vec<String>,
    /// Disposable-client keys (`distro`, `release`, `flavor`, `arch`); kept, not used locally.
    pub other: serde_json::Map<String, Value>,
}

/// One entry of `actions`.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// 0-based position in `actions`, for messages (`actions[3]`).
    pub index: usize,
    pub name: String,
    /// The directive key (`shell`, `python`, `koji`, ...).
    pub directive: String,
    /// The directive's parameters, before variable substitution.
    pub params: Value,
    /// Variable that receives the directive's return value.
    pub export: Option<String>,
}

impl Action {
    /// `actions[N]` — the field path of this action, for error messages.
    pub fn field(&self) -> String {
        format!("actions[{}]", self.index)
    }
}

/// A formula that cannot be used. Displays as one line: `FILE: FIELD: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormulaError {
    #[error("{file}: cannot read: {message}")]
    Read { file: String, message: String },
    #[error("{file}: invalid YAML: {message}")]
    Yaml { file: String, message: String },
    #[error("{file}: {field}: {message}")]
    Field {
        file: String,
        field: String,
        message: String,
    },
}

const TOP_KEYS: &[&str] = &[
    "name",
    "desc",
    "maintainer",
    "namespace",
    "input",
    "environment",
    "actions",
];
const ENV_KEYS: &[&str] = &["rpm", "distro", "release", "flavor", "arch"];
const ACTION_META_KEYS: &[&str] = &["name", "export"];

impl Formula {
    /// Reads and parses a formula file.
    pub fn from_path(path: &Path) -> Result<Formula, FormulaError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| FormulaError::Read {
            file: file.clone(),
            message: e.to_string(),
        })?;
        Formula::parse(&text, &file)
    }

    /// Parses formula text; `file` is only used in error messages.
    pub fn parse(text: &str, file: &str) -> Result<Formula, FormulaError> {
        let yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| FormulaError::Yaml {
                file: file.to_string(),
                message: one_line(&e.to_string()),
            })?;
        let p = Parser { file };
        let doc: Value = serde_json::to_value(&yaml).map_err(|e| p.err("(document)", e))?;
        p.formula(&doc)
    }

    /// The directive names used by the actions, in order of first use.
    pub fn directives(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for a in &self.actions {
            if !out.contains(&a.directive.as_str()) {
                out.push(&a.directive);
            }
        }
        out
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Parser<'a> {
    file: &'a str,
}

impl Parser<'_> {
    fn err(&self, field: &str, message: impl std::fmt::Display) -> FormulaError {
        FormulaError::Field {
            file: self.file.to_string(),
            field: field.to_string(),
            message: one_line(&message.to_string()),
        }
    }

    fn formula(&self, doc: &Value) -> Result<Formula, FormulaError> {
        let map = match doc {
            Value::Object(m) => m,
            Value::Null => return Err(self.err("(document)", "the formula is empty")),
            other => {
                return Err(self.err(
                    "(document)",
                    format!(
                        "expected a mapping of top-level keys, found {}",
                        kind(other)
                    ),
                ))
            }
        };
        self.check_keys("(top level)", map, TOP_KEYS)?;
        let name = self.req_str(map, "name", "name")?;
        let desc = self.req_str(map, "desc", "desc")?;
        let maintainer = self.req_str(map, "maintainer", "maintainer")?;
        let namespace = match map.get("namespace") {
            None | Some(Value::Null) => None,
            Some(v) => Some(self.string(v, "namespace")?),
        };
        let input_args = match map.get("input") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(input)) => {
                self.check_keys("input", input, &["args"])?;
                match input.get("args") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(v) => self.str_list(v, "input.args")?,
                }
            }
            Some(other) => {
                return Err(self.err(
                    "input",
                    format!("expected a mapping with `args`, found {}", kind(other)),
                ))
            }
        };
        let environment = match map.get("environment") {
            None | Some(Value::Null) => Environment::default(),
            Some(Value::Object(env)) => {
                self.check_keys("environment", env, ENV_KEYS)?;
                let rpm = match env.get("rpm") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(v) => self.str_list(v, "environment.rpm")?,
                };
                let mut other = env.clone();
                other.remove("rpm");
                Environment { rpm, other }
            }
            Some(other) => {
                return Err(self.err(
                    "environment",
                    format!("expected a mapping, found {}", kind(other)),
                ))
            }
        };
        let actions = match map.get("actions") {
            Some(Value::Array(list)) if !list.is_empty() => list
                .iter()
                .enumerate()
                .map(|(i, a)| self.action(i, a))
                .collect::<Result<Vec<_>, _>>()?,
            Some(Value::Array(_)) => return Err(self.err("actions", "the list is empty")),
            None | Some(Value::Null) => {
                return Err(self.err("actions", "missing: a formula needs a list of actions"))
            }
            Some(other) => {
                return Err(self.err(
                    "actions",
                    format!("expected a list of actions, found {}", kind(other)),
                ))
            }
        };
        Ok(Formula {
            name,
            desc,
            maintainer,
            namespace,
            input_args,
            environment,
            actions,
        })
    }

    fn action(&self, index: usize, v: &Value) -> Result<Action, FormulaError> {
        let field = format!("actions[{index}]");
        let map = match v {
            Value::Object(m) => m,
            other => {
                return Err(self.err(
                    &field,
                    format!(
                        "expected a mapping with `name` and a directive, found {}",
                        kind(other)
                    ),
                ))
            }
        };
        let name = self.req_str(map, "name", &format!("{field}.name"))?;
        let export = match map.get("export") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let var = self.string(v, &format!("{field}.export"))?;
                if !is_identifier(&var) {
                    return Err(self.err(
                        &format!("{field}.export"),
                        format!("`{var}` is not a valid variable name (letters, digits, `_`)"),
                    ));
                }
                Some(var)
            }
        };
        let directives: Vec<&String> = map
            .keys()
            .filter(|k| !ACTION_META_KEYS.contains(&k.as_str()))
            .collect();
        let directive = match directives.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(self.err(
                    &field,
                    format!("action '{name}' has no directive key (e.g. `shell:` or `python:`)"),
                ))
            }
            many => {
                let names: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
                return Err(self.err(
                    &field,
                    format!(
                        "action '{name}' has several directive keys ({}); exactly one is allowed",
                        names.join(", ")
                    ),
                ));
            }
        };
        let params = map.get(&directive).cloned().unwrap_or(Value::Null);
        Ok(Action {
            index,
            name,
            directive,
            params,
            export,
        })
    }

    fn check_keys(
        &self,
        field: &str,
        map: &serde_json::Map<String, Value>,
        allowed: &[&str],
    ) -> Result<(), FormulaError> {
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                return Err(self.err(
                    field,
                    format!("unknown key `{key}`; allowed keys: {}", allowed.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn req_str(
        &self,
        map: &serde_json::Map<String, Value>,
        key: &str,
        field: &str,
    ) -> Result<String, FormulaError> {
        match map.get(key) {
            None | Some(Value::Null) => Err(self.err(field, "missing (required)")),
            Some(v) => self.string(v, field),
        }
    }

    /// A scalar as a string (numbers are accepted, e.g. `name: 2048`).
    fn string(&self, v: &Value, field: &str) -> Result<String, FormulaError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(self.err(field, format!("expected a string, found {}", kind(other)))),
        }
    }

    /// A list of strings; a single string is accepted as a one-item list.
    fn str_list(&self, v: &Value, field: &str) -> Result<Vec<String>, FormulaError> {
        match v {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.string(item, &format!("{field}[{i}]")))
                .collect(),
            Value::String(s) => Ok(vec![s.clone()]),
            other => Err(self.err(
                field,
                format!("expected a list of strings, found {}", kind(other)),
            )),
        }
    }
}

/// A variable name as `export` and `input.args` use them.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// A short description of a value's type for error messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OK: &str = "---\n# comment\nname: t\nnamespace: scratch\ndesc: |\n  multi\n  line\nmaintainer: me\ninput:\n  args: [koji_build]\nenvironment:\n  rpm: [xz, /usr/bin/tar]\nactions:\n  - name: one\n    shell:\n      - echo ${koji_build}\n    export: out\n  - name: two\n    dummy: {result: PASS}\n";

    #[test]
    fn parses_a_complete_formula() {
        let f = Formula::parse(OK, "t.yml").unwrap();
        assert_eq!(f.name, "t");
        assert_eq!(f.desc, "multi\nline\n");
        assert_eq!(f.namespace.as_deref(), Some("scratch"));
        assert_eq!(f.input_args, vec!["koji_build"]);
        assert_eq!(f.environment.rpm, vec!["xz", "/usr/bin/tar"]);
        assert_eq!(f.actions.len(), 2);
        assert_eq!(f.actions[0].directive, "shell");
        assert_eq!(f.actions[0].params, json!(["echo ${koji_build}"]));
        assert_eq!(f.actions[0].export.as_deref(), Some("out"));
        assert_eq!(f.actions[1].params, json!({"result": "PASS"}));
        assert_eq!(f.directives(), vec!["shell", "dummy"]);
    }

    fn err(text: &str) -> String {
        Formula::parse(text, "f.yml").unwrap_err().to_string()
    }

    #[test]
    fn errors_are_one_line_with_file_and_field() {
        let base = "name: t\ndesc: d\nmaintainer: m\n";
        let cases = [
            ("name: [unclosed", "f.yml: invalid YAML:"),
            ("- a\n- b", "f.yml: (document): expected a mapping"),
            ("", "f.yml: (document): the formula is empty"),
            (
                "desc: d\nmaintainer: m\nactions: [{name: a, dummy: {}}]",
                "f.yml: name: missing",
            ),
            (
                &format!("{base}actions: []\nscheduling: x"),
                "unknown key `scheduling`",
            ),
            (
                &format!("{base}actions: {{}}"),
                "f.yml: actions: expected a list",
            ),
            (
                &format!("{base}actions: [3]"),
                "f.yml: actions[0]: expected a mapping",
            ),
            (
                &format!("{base}actions: [{{name: a}}]"),
                "f.yml: actions[0]: action 'a' has no directive",
            ),
            (
                &format!("{base}actions: [{{name: a, shell: [], python: {{}}}}]"),
                "several directive keys (shell, python)",
            ),
            (
                &format!("{base}actions: [{{shell: []}}]"),
                "f.yml: actions[0].name: missing",
            ),
            (
                &format!("{base}actions: [{{name: a, shell: [], export: 'a b'}}]"),
                "actions[0].export: `a b` is not a valid",
            ),
            (
                &format!("{base}input: {{args: {{a: 1}}}}\nactions: [{{name: a, dummy: {{}}}}]"),
                "f.yml: input.args: expected a list",
            ),
            (
                &format!(
                    "{base}environment: {{rpm: [a, [b]]}}\nactions: [{{name: a, dummy: {{}}}}]"
                ),
                "environment.rpm[1]: expected a string",
            ),
            (
                &format!("{base}environment: {{pip: [a]}}\nactions: [{{name: a, dummy: {{}}}}]"),
                "f.yml: environment: unknown key `pip`",
            ),
        ];
        for (text, want) in cases {
            let got = err(text);
            assert!(
                got.contains(want),
                "for {text:?}: got {got:?}, want {want:?}"
            );
            assert!(!got.contains('\n'), "multi-line error: {got:?}");
        }
    }
}
