//! `xunit`: turns an xUnit/JUnit XML file into ResultYAML (reference/taskotron.md §2.11).
//!
//! ```yaml
//! xunit:
//!   file: ${artifactsdir}/tests.xml   # relative paths are relative to the task dir
//!   aggregation: allpass              # default: one result, PASSED iff every testcase passed;
//!                                     # `none`: one result per testcase (<checkname>.<name>)
//!   # item, type, checkname default to the run's ${item}, ${type}, ${checkname}
//! ```
//! A testcase fails when it has a `<failure>` or `<error>` child; skipped ones count as passed.
//! The XML file becomes the results' `artifact`. Returns ResultYAML text.

use serde_json::Value;

use super::{Directive, DirectiveContext, DirectiveError, Params};
use taskotron_common::resultyaml::{export_yaml, summary, CheckDetail, Outcome};

pub struct Xunit;

/// Largest xUnit file read.
const MAX_XML: u64 = 64 * 1024 * 1024;

impl Directive for Xunit {
    fn name(&self) -> &'static str {
        "xunit"
    }

    fn run(&self, params: &Value, ctx: &mut DirectiveContext<'_>) -> Result<Value, DirectiveError> {
        let p = Params::new(params)?;
        p.allow(&["file", "aggregation", "item", "type", "checkname"])?;
        let path = ctx.task_path(&p.req_str("file")?);
        let aggregation = p
            .opt_str("aggregation")?
            .unwrap_or_else(|| "allpass".into());
        if aggregation != "allpass" && aggregation != "none" {
            return Err(DirectiveError::param(
                "aggregation",
                format!("`{aggregation}` is not one of allpass, none"),
            ));
        }
        let item = p
            .opt_str("item")?
            .unwrap_or_else(|| ctx.var_str("item").into());
        let item_type = p
            .opt_str("type")?
            .unwrap_or_else(|| ctx.var_str("type").into());
        let checkname = p
            .opt_str("checkname")?
            .unwrap_or_else(|| ctx.var_str("checkname").into());
        let size = std::fs::metadata(&path)
            .map_err(|e| DirectiveError::io(format!("cannot read {}", path.display()), e))?
            .len();
        if size > MAX_XML {
            return Err(DirectiveError::Failed(format!(
                "{}: {size} bytes is larger than the {MAX_XML} bytes limit",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| DirectiveError::io(format!("cannot read {}", path.display()), e))?;
        let cases = parse_testcases(&text)
            .map_err(|e| DirectiveError::Failed(format!("{}: {e}", path.display())))?;
        let artifact = path
            .strip_prefix(ctx.artifactsdir)
            .ok()
            .map(|p| p.display().to_string());
        let detail = |checkname: String, outcome: Outcome, note: String| {
            let mut d = CheckDetail::new(Some(item.clone()), Some(item_type.clone()), outcome);
            d.checkname = Some(checkname);
            d.note = note;
            d.artifact = artifact.clone();
            d
        };
        let details: Vec<CheckDetail> = if aggregation == "allpass" {
            let outcomes: Vec<Outcome> = cases.iter().map(|c| c.outcome).collect();
            let worst = if outcomes.iter().all(|o| o.is_success()) {
                Outcome::Passed
            } else {
                Outcome::Failed
            };
            vec![detail(checkname.clone(), worst, summary(outcomes))]
        } else {
            cases
                .iter()
                .map(|c| detail(format!("{checkname}.{}", c.name), c.outcome, String::new()))
                .collect()
        };
        tracing::info!("{}: {} testcases", path.display(), cases.len());
        Ok(Value::String(export_yaml(&details)))
    }
}

/// One `<testcase>`.
#[derive(Debug, PartialEq)]
struct TestCase {
    name: String,
    outcome: Outcome,
}

/// Every `<testcase>` anywhere in the document (inside `<testsuite>` or `<testsuites>`).
fn parse_testcases(text: &str) -> Result<Vec<TestCase>, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("invalid XML: {e}"))?;
    let root = doc.root_element().tag_name().name();
    if root != "testsuite" && root != "testsuites" {
        return Err(format!(
            "not an xUnit file: root element is <{root}>, expected <testsuite> or <testsuites>"
        ));
    }
    Ok(doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|n| {
            let failed = n
                .children()
                .any(|c| c.has_tag_name("failure") || c.has_tag_name("error"));
            TestCase {
                name: n.attribute("name").unwrap_or("unnamed").to_string(),
                outcome: if failed {
                    Outcome::Failed
                } else {
                    Outcome::Passed
                },
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn testcases_and_outcomes() {
        let xml = r#"<?xml version="1.0"?>
<testsuites><testsuite name="s" tests="4">
  <testcase classname="c" name="ok"/>
  <testcase name="bad"><failure message="x">boom</failure></testcase>
  <testcase name="err"><error/></testcase>
  <testcase name="skip"><skipped/></testcase>
</testsuite></testsuites>"#;
        let cases = parse_testcases(xml).unwrap();
        let got: Vec<(&str, Outcome)> =
            cases.iter().map(|c| (c.name.as_str(), c.outcome)).collect();
        assert_eq!(
            got,
            [
                ("ok", Outcome::Passed),
                ("bad", Outcome::Failed),
                ("err", Outcome::Failed),
                ("skip", Outcome::Passed)
            ]
        );
        assert!(parse_testcases("<html/>")
            .unwrap_err()
            .contains("root element is <html>"));
        assert!(parse_testcases("<testsuite>")
            .unwrap_err()
            .contains("invalid XML"));
    }
}
