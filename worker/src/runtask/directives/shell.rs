//! `shell`: runs a list of commands in the task directory (reference/taskotron.md §2.2).
//!
//! ```yaml
//! shell:
//!   - echo hello ${item}                 # a string: split like a shell would (quotes work),
//!                                        # but no pipes, globs, `&&` or redirections
//!   - [ls, -l, "${workdir}"]             # an argv list
//!   - ignorereturn:                      # commands whose exit code does not matter
//!       - [false]
//! ```
//! A non-zero exit code fails the action (and the run) unless the command is under
//! `ignorereturn`. Returns the stdout of all commands, concatenated.

use serde_json::Value;

use super::{Directive, DirectiveContext, DirectiveError};
use crate::runtask::process;
use taskotron_common::formula::kind;

pub struct Shell;

/// One command to run.
struct Cmd {
    argv: Vec<String>,
    ignore_return: bool,
}

impl Directive for Shell {
    fn name(&self) -> &'static str {
        "shell"
    }

    fn run(&self, params: &Value, ctx: &mut DirectiveContext<'_>) -> Result<Value, DirectiveError> {
        let cmds = parse_commands(params)?;
        let mut stdout = String::new();
        for cmd in cmds {
            let shown = process::display(&cmd.argv);
            tracing::info!("running: {shown}");
            let out = process::run_logged(&cmd.argv, ctx.taskdir, &[])
                .map_err(|e| DirectiveError::io(format!("cannot run `{shown}`"), e))?;
            stdout.push_str(&out.stdout);
            if !out.status.success() {
                let code = out
                    .status
                    .code()
                    .map(|c| format!("exit code {c}"))
                    .unwrap_or_else(|| "killed by a signal".into());
                if cmd.ignore_return {
                    tracing::info!("`{shown}` ended with {code} (ignored: ignorereturn)");
                } else {
                    return Err(DirectiveError::Failed(format!(
                        "command `{shown}` failed with {code}{}",
                        stderr_hint(&out.stderr)
                    )));
                }
            }
        }
        Ok(Value::String(stdout))
    }
}

fn stderr_hint(stderr: &str) -> String {
    let tail = process::tail_lines(stderr, 2);
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {tail}")
    }
}

fn parse_commands(params: &Value) -> Result<Vec<Cmd>, DirectiveError> {
    let list = match params {
        Value::Array(items) => items,
        other => {
            return Err(DirectiveError::param(
                "(all)",
                format!("expected a list of commands, found {}", kind(other)),
            ))
        }
    };
    let mut cmds = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let field = format!("[{i}]");
        match item {
            Value::Object(map) => {
                for key in map.keys() {
                    if key != "ignorereturn" {
                        return Err(DirectiveError::param(
                            &format!("{field}.{key}"),
                            "unknown key; only `ignorereturn` may hold commands",
                        ));
                    }
                }
                match map.get("ignorereturn") {
                    Some(Value::Array(inner)) => {
                        for (j, c) in inner.iter().enumerate() {
                            cmds.push(Cmd {
                                argv: argv(c, &format!("{field}.ignorereturn[{j}]"))?,
                                ignore_return: true,
                            });
                        }
                    }
                    Some(other) => {
                        return Err(DirectiveError::param(
                            &format!("{field}.ignorereturn"),
                            format!("expected a list of commands, found {}", kind(other)),
                        ))
                    }
                    None => {}
                }
            }
            other => cmds.push(Cmd {
                argv: argv(other, &field)?,
                ignore_return: false,
            }),
        }
    }
    Ok(cmds)
}

/// A command as argv: a string is split shell-like, a list is taken as is.
fn argv(v: &Value, field: &str) -> Result<Vec<String>, DirectiveError> {
    let argv = match v {
        Value::String(s) => shlex::split(s).ok_or_else(|| {
            DirectiveError::param(field, format!("cannot split `{s}` (unbalanced quotes?)"))
        })?,
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, a)| match a {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(if *b { "True" } else { "False" }.to_string()),
                other => Err(DirectiveError::param(
                    &format!("{field}[{i}]"),
                    format!("expected a string argument, found {}", kind(other)),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        other => {
            // YAML reads `- true` or `- 42` as a boolean/number: suggest quoting.
            let hint = match other {
                Value::Bool(_) | Value::Number(_) => " (quote it, e.g. - 'true')",
                _ => "",
            };
            return Err(DirectiveError::param(
                field,
                format!(
                    "expected a command (string or list), found {}{hint}",
                    kind(other)
                ),
            ));
        }
    };
    if argv.is_empty() {
        return Err(DirectiveError::param(field, "empty command"));
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn command_forms() {
        let cmds = parse_commands(&json!([
            "echo 'a b' c",
            ["ls", "-l", 3],
            {"ignorereturn": ["false", ["true"]]}
        ]))
        .unwrap();
        assert_eq!(cmds.len(), 4);
        assert_eq!(cmds[0].argv, ["echo", "a b", "c"]);
        assert_eq!(cmds[1].argv, ["ls", "-l", "3"]);
        assert!(cmds[2].ignore_return && cmds[3].ignore_return);
        assert!(!cmds[0].ignore_return);
    }

    #[test]
    fn bad_forms_name_the_item() {
        let e = |v| parse_commands(&v).err().unwrap().to_string();
        assert!(e(json!("echo")).contains("expected a list of commands"));
        assert!(e(json!(["echo 'x"])).contains("parameter `[0]`: cannot split"));
        assert!(e(json!([[]])).contains("`[0]`: empty command"));
        assert!(e(json!([true])).contains("found a boolean (quote it"));
        assert!(e(json!([{"ignore": []}])).contains("`[0].ignore`"));
        assert!(e(json!(["a", ["b", {"c": 1}]])).contains("`[1][1]`"));
    }
}
