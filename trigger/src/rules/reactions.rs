//! `do:` reactions of a rule: `{tasks: [...]}` or `{discover: {...}}`, each optionally with
//! `arches: [...]` and `match_host_arch: true`.

use serde_json::Value;

/// One reaction of a matched rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Reaction {
    pub what: What,
    /// Explicit arches; `None` means the config's `valid_arches`.
    pub arches: Option<Vec<String>>,
    pub match_host_arch: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum What {
    Tasks(Vec<String>),
    Discover(DiscoverSpec),
}

/// Where to look for `runtask.yml` formulas.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DiscoverSpec {
    pub repo: String,
    pub branch: String,
    pub fallback_branch: Option<String>,
    pub base_dir: String,
    pub recursive: bool,
}

fn string_list(v: &Value, what: &str) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!("{what}: expected names, got {other}")),
            })
            .collect(),
        other => Err(format!("{what}: expected a list of names, got {other}")),
    }
}

impl Reaction {
    /// Parses one item of a `do:` list.
    pub fn parse(v: &Value) -> Result<Reaction, String> {
        let m = v
            .as_object()
            .ok_or_else(|| format!("expected a mapping with `tasks` or `discover`, got {v}"))?;
        for k in m.keys() {
            if !["tasks", "discover", "arches", "match_host_arch"].contains(&k.as_str()) {
                return Err(format!(
                    "unknown key {k:?} (expected tasks, discover, arches, match_host_arch)"
                ));
            }
        }
        let what = match (m.get("tasks"), m.get("discover")) {
            (Some(t), None) => {
                let tasks = string_list(t, "tasks")?;
                if tasks.is_empty() {
                    return Err("tasks: expected at least one task name".into());
                }
                What::Tasks(tasks)
            }
            (None, Some(d)) => What::Discover(DiscoverSpec::parse(d)?),
            (Some(_), Some(_)) => {
                return Err("has both `tasks` and `discover`; use two reactions".into())
            }
            (None, None) => return Err("expected `tasks` or `discover`".into()),
        };
        let arches = match m.get("arches") {
            None | Some(Value::Null) => None,
            Some(a) => {
                let l = string_list(a, "arches")?;
                if l.is_empty() {
                    return Err("arches: expected at least one arch".into());
                }
                Some(l)
            }
        };
        let match_host_arch = match m.get("match_host_arch") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!("match_host_arch: expected true/false, got {other}"))
            }
        };
        Ok(Reaction {
            what,
            arches,
            match_host_arch,
        })
    }
}

impl DiscoverSpec {
    fn parse(v: &Value) -> Result<DiscoverSpec, String> {
        let m = v
            .as_object()
            .ok_or("discover: expected a mapping with `repo`")?;
        for k in m.keys() {
            if !["repo", "branch", "fallback_branch", "base_dir", "recursive"].contains(&k.as_str())
            {
                return Err(format!("discover: unknown key {k:?}"));
            }
        }
        let text = |k: &str| -> Result<Option<String>, String> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!("discover.{k}: expected a string, got {other}")),
            }
        };
        let repo = text("repo")?.ok_or("discover.repo: missing")?;
        let recursive = match m.get("recursive") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "discover.recursive: expected true/false, got {other}"
                ))
            }
        };
        Ok(DiscoverSpec {
            repo,
            branch: text("branch")?.unwrap_or_else(|| "master".into()),
            fallback_branch: text("fallback_branch")?,
            base_dir: text("base_dir")?.unwrap_or_default(),
            recursive,
        })
    }
}
