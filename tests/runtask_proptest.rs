//! Property tests for variable substitution and the formula parser: they never panic, keep
//! types for whole-value placeholders, treat `$$` as `$`, and a formula that renders to
//! YAML and back parses to the same actions.

use proptest::prelude::*;
use serde_json::{json, Value};
use taskotron_common::formula::Formula;
use taskotron_common::template::{parse, substitute, substitute_str, Segment, Variables};

fn vars() -> Variables {
    json!({"a": "x", "b_1": 7, "d": {"k": "v", "n": [1, 2]}, "l": ["p", "q"]})
        .as_object()
        .cloned()
        .unwrap()
}

/// Literal text without `$`.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ./:_{}-]{0,12}"
}

proptest! {
    #[test]
    fn substitution_never_panics(s in "\\PC{0,40}") {
        let _ = substitute_str(&s, &vars(), "f");
        let _ = parse(&s);
    }

    #[test]
    fn text_without_dollar_is_unchanged(s in text()) {
        prop_assert_eq!(substitute_str(&s, &vars(), "f").unwrap(), Value::String(s));
    }

    #[test]
    fn double_dollar_is_a_literal_dollar(a in text(), b in text()) {
        let got = substitute_str(&format!("{a}$${b}"), &vars(), "f").unwrap();
        prop_assert_eq!(got, Value::String(format!("{a}${b}")));
    }

    #[test]
    fn whole_value_placeholder_keeps_type(name in prop::sample::select(vec!["a", "b_1", "d", "l"]), braced in any::<bool>()) {
        let s = if braced { format!("${{{name}}}") } else { format!("${name}") };
        prop_assert_eq!(substitute_str(&s, &vars(), "f").unwrap(), vars()[name].clone());
    }

    #[test]
    fn embedded_placeholder_interpolates(pre in text(), post in "[ ./:-][a-z ./:-]{0,8}") {
        let got = substitute_str(&format!("{pre}${{d.k}}{post}"), &vars(), "f").unwrap();
        prop_assert_eq!(got, Value::String(format!("{pre}v{post}")));
    }

    #[test]
    fn undefined_names_are_errors(name in "[a-z_][a-z0-9_]{0,8}") {
        prop_assume!(!vars().contains_key(&name));
        let e = substitute_str(&format!("x ${{{name}}}"), &vars(), "f.g").unwrap_err();
        prop_assert!(e.to_string().starts_with("f.g: undefined variable"));
    }

    #[test]
    fn parse_then_render_round_trips(s in "(\\$\\$|\\$\\{[a-z]{1,3}(\\.[a-z0-9]{1,3}){0,2}\\}|[a-z .]){0,20}") {
        let segs = parse(&s).unwrap();
        let rendered: String = segs.iter().map(|seg| match seg {
            Segment::Text(t) => t.replace('$', "$$"),
            Segment::Var(p) => format!("${{{}}}", p.join(".")),
        }).collect();
        prop_assert_eq!(parse(&rendered).unwrap(), segs);
    }

    #[test]
    fn recursive_substitution_preserves_shape(keys in prop::collection::vec("[a-z]{1,5}", 0..5)) {
        let mut map = serde_json::Map::new();
        for k in &keys {
            map.insert(k.clone(), json!(["$a", {"z": "${d.n}"}, 3, null]));
        }
        let out = substitute(&Value::Object(map.clone()), &vars(), "p").unwrap();
        let obj = out.as_object().unwrap();
        prop_assert_eq!(obj.len(), map.len());
        for k in &keys {
            prop_assert_eq!(&obj[k], &json!(["x", {"z": [1, 2]}, 3, null]));
        }
    }

    #[test]
    fn formula_parser_never_panics(s in "\\PC{0,200}") {
        let _ = Formula::parse(&s, "p.yml");
    }

    #[test]
    fn formula_errors_are_one_line(s in "(name|desc|actions|input|args|- |: |\\[|\\]|\\{|\\}|\n|  |x|1){0,40}") {
        if let Err(e) = Formula::parse(&s, "p.yml") {
            let msg = e.to_string();
            prop_assert!(!msg.contains('\n'), "{}", msg);
            prop_assert!(msg.starts_with("p.yml: "), "{}", msg);
        }
    }

    #[test]
    fn generated_formulas_parse_to_their_actions(
        actions in prop::collection::vec(("[a-z][a-z ]{0,10}", prop::sample::select(vec!["shell", "python", "dummy", "koji"]), prop::option::of("[a-z_]{1,6}")), 1..6)
    ) {
        let mut doc = json!({"name": "n", "desc": "d", "maintainer": "m", "actions": []});
        for (name, directive, export) in &actions {
            let mut a = json!({"name": name, directive.to_string(): {"p": "${x}"}});
            if let Some(e) = export { a["export"] = json!(e); }
            doc["actions"].as_array_mut().unwrap().push(a);
        }
        let text = serde_yaml_ng::to_string(&doc).unwrap();
        let f = Formula::parse(&text, "g.yml").unwrap();
        prop_assert_eq!(f.actions.len(), actions.len());
        for (a, (name, directive, export)) in f.actions.iter().zip(&actions) {
            prop_assert_eq!(&a.name, name);
            prop_assert_eq!(&a.directive, directive);
            prop_assert_eq!(&a.export, export);
            prop_assert_eq!(&a.params, &json!({"p": "${x}"}));
        }
    }
}
