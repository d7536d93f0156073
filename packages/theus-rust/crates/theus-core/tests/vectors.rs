//! The language-neutral vectors of `spec/vectors/`, checked case by case.

use serde_json::Value as Json;
use theus_core::{zone_of, Path, Pattern, Zone};

fn load(name: &str) -> Json {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../../spec/vectors/").to_owned() + name;
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn s(v: &Json) -> &str {
    v.as_str().unwrap()
}

#[test]
fn paths() {
    let vectors = load("paths.json");
    let valid = vectors["valid"].as_array().unwrap();
    assert!(!valid.is_empty());
    for case in valid {
        let text = s(&case[0]);
        let expected: Vec<&str> = case[1].as_array().unwrap().iter().map(s).collect();
        let path = Path::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"));
        let got: Vec<&str> = path.segments().iter().map(|x| &**x).collect();
        assert_eq!(got, expected, "{text:?}");
        assert_eq!(path.to_string(), text);
    }
    for case in vectors["invalid"].as_array().unwrap() {
        let text = s(case);
        match Path::parse(text) {
            Err(theus_core::Error::InvalidPath { path, .. }) => assert_eq!(path, text),
            other => panic!("{text:?} should be an invalid path, got {other:?}"),
        }
    }
}

#[test]
fn patterns() {
    let vectors = load("patterns.json");
    for case in vectors["invalid"].as_array().unwrap() {
        let text = s(case);
        assert!(
            matches!(
                Pattern::parse(text),
                Err(theus_core::Error::InvalidContract { .. })
            ),
            "{text:?} should be an invalid pattern"
        );
    }
    let cases = vectors["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let pattern = Pattern::parse(s(&case["pattern"])).unwrap();
        let path = Path::parse(s(&case["path"])).unwrap();
        let covers = case["covers"].as_bool().unwrap();
        let leads_to = case["leads_to"].as_bool().unwrap();
        assert_eq!(pattern.covers(&path), covers, "covers: {pattern} / {path}");
        assert_eq!(
            pattern.leads_to(&path),
            leads_to,
            "leads_to: {pattern} / {path}"
        );
    }
}

/// The compiled contract (one pattern as inputs) answers like the pattern on every case.
#[test]
fn patterns_compiled() {
    let vectors = load("patterns.json");
    for case in vectors["cases"].as_array().unwrap() {
        let text = s(&case["pattern"]);
        let contract =
            theus_core::Contract::compile("p", [text], [text], theus_core::Semantic::Effect)
                .unwrap();
        let path = Path::parse(s(&case["path"])).unwrap();
        let cursor = contract.cursor_at(path.segments());
        let covers = case["covers"].as_bool().unwrap();
        assert_eq!(contract.covered(cursor), covers, "covered: {text} / {path}");
        assert_eq!(
            contract.writable(cursor),
            covers,
            "writable: {text} / {path}"
        );
        if !covers {
            let leads_to = case["leads_to"].as_bool().unwrap();
            assert_eq!(contract.alive(cursor), leads_to, "alive: {text} / {path}");
        }
    }
}

#[test]
fn overlap() {
    let vectors = load("overlap.json");
    let cases = vectors.as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let a = Path::parse(s(&case[0])).unwrap();
        let b = Path::parse(s(&case[1])).unwrap();
        let expected = case[2].as_bool().unwrap();
        assert_eq!(a.overlaps(&b), expected, "{a} / {b}");
        assert_eq!(b.overlaps(&a), expected, "{b} / {a} (symmetric)");
    }
}

#[test]
fn zones() {
    let vectors = load("zones.json");
    let cases = vectors.as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let path = Path::parse(s(&case[0])).unwrap();
        let expected = Zone::from_name(s(&case[1])).unwrap();
        assert_eq!(zone_of(&path), expected, "{path}");
        // The incremental form agrees.
        let step = path
            .segments()
            .iter()
            .fold(None, |z, k| theus_core::zone_step(z, k))
            .unwrap_or(Zone::Data);
        assert_eq!(step, expected, "{path} (incremental)");
    }
}
