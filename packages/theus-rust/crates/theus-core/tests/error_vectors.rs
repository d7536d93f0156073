//! `spec/vectors/errors.json` (spec `12`, messages): the cases the core can express without
//! Python — host transactions and processes returning a `StateUpdate`, made only of dotted-path
//! updates — must fail with the vector's message. The Python layer raises a core
//! `ContractViolation` / `Context` error with its detail, and a `Conflict` with its `Display`;
//! other classes are worded (or first checked) in Python and are left to the conformance suite.

use std::sync::Arc;

use serde_json::Value as Json;
use theus_core::{zone_of, Contract, Error, PMap, Path, Semantic, Store, Transaction, Value, Zone};

type V = Value<Json>;

fn load() -> Json {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../../spec/vectors/errors.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// A JSON value as the tree stores it at `at`: heavy-zone values and signal values are leaves.
fn value(json: &Json, at: &Path) -> V {
    if matches!(zone_of(at), Zone::Heavy | Zone::Signal) {
        return Value::Leaf(json.clone());
    }
    match json {
        Json::Object(m) => Value::Map(
            m.iter()
                .map(|(k, v)| {
                    let below = at.child(k.as_str()).unwrap();
                    (k.as_str(), value(v, &below))
                })
                .collect::<PMap<Json>>(),
        ),
        Json::Array(items) => Value::List(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| value(v, &at.child(i.to_string()).unwrap()))
                .collect(),
        ),
        leaf => Value::Leaf(leaf.clone()),
    }
}

fn store(context: &Json) -> Store<Json> {
    let root: PMap<Json> = context
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, v)| (name.as_str(), value(v, &Path::parse(name).unwrap())))
        .collect();
    Store::new(root).unwrap()
}

/// `tx.update(**kwargs)` / `StateUpdate(**kwargs)`: data, heavy, signal, then delete.
fn update(tx: &mut Transaction<Json>, kwargs: &Json) -> theus_core::Result<()> {
    for field in ["data", "heavy", "signal"] {
        if let Some(Json::Object(m)) = kwargs.get(field) {
            for (key, v) in m {
                let path = Path::parse(key)?;
                let stored = value(v, &path);
                tx.set(&path, stored)?;
            }
        }
    }
    if let Some(Json::Array(paths)) = kwargs.get("delete") {
        for key in paths {
            tx.delete(&Path::parse(key.as_str().unwrap())?)?;
        }
    }
    Ok(())
}

/// The message the Python layer shows for a core error of the vector's class, if the class is
/// one the core words itself.
fn shown(err: &Error, class: &str) -> Option<String> {
    match (err, class) {
        (Error::ContractViolation { detail, .. }, "ContractViolationError")
        | (Error::Context { detail, .. }, "ContextError") => Some(detail.clone()),
        (Error::Conflict { .. }, "ConflictError") => Some(err.to_string()),
        _ => None,
    }
}

/// Run a case the core can express; `None` if it cannot.
fn run(case: &Json, default_context: &Json) -> Option<theus_core::Result<()>> {
    let host = case.get("host").and_then(Json::as_array);
    let steps = case.get("steps").and_then(Json::as_array);
    let expressible_host = host.is_none_or(|h| {
        h.iter().all(|step| {
            step[0] == "tx"
                && step[1]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|sub| ["update", "append", "other_commit"].iter().any(|op| sub[0] == *op))
        })
    });
    let expressible_steps =
        steps.is_none_or(|s| !s.is_empty() && s.iter().all(|step| step[0] == "return_update"));
    if !expressible_host || !expressible_steps {
        return None;
    }
    let context = case.get("context").unwrap_or(default_context);
    let store = store(context);
    if let Some(spec) = case.get("process") {
        let patterns = |k: &str| -> Vec<String> {
            spec[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_owned())
                .collect()
        };
        let semantic =
            Semantic::parse(spec.get("semantic").and_then(Json::as_str).unwrap_or("effect"))?;
        let contract = Contract::compile(
            spec["name"].as_str().unwrap(),
            patterns("inputs").iter().map(String::as_str),
            patterns("outputs").iter().map(String::as_str),
            semantic,
        )
        .ok()?;
        let mut tx = store.begin(Arc::new(contract), true);
        for step in steps.unwrap() {
            if let Err(e) = update(&mut tx, &step[1]) {
                return Some(Err(e));
            }
        }
        if let Err(e) = tx.commit(false) {
            return Some(Err(e));
        }
    }
    for step in host.into_iter().flatten() {
        let mut tx = store.begin_host();
        for sub in step[1].as_array().unwrap() {
            let result = if sub[0] == "update" {
                update(&mut tx, &sub[1])
            } else if sub[0] == "append" {
                Path::parse(sub[1].as_str().unwrap()).and_then(|path| {
                    let at = path.child("0").unwrap_or_else(|_| path.clone());
                    tx.append(&path, value(&sub[2], &at))
                })
            } else {
                let mut other = store.begin_host();
                update(&mut other, &sub[1]).and_then(|()| other.commit(false).map(|_| ()))
            };
            if let Err(e) = result {
                return Some(Err(e));
            }
        }
        if let Err(e) = tx.commit(false) {
            return Some(Err(e));
        }
    }
    Some(Ok(()))
}

#[test]
fn error_messages_match_the_vectors() {
    let vectors = load();
    let mut checked = 0;
    for case in vectors["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let class = case["error"].as_str().unwrap();
        if !matches!(
            class,
            "ContractViolationError" | "ContextError" | "ConflictError"
        ) {
            continue;
        }
        let Some(outcome) = run(case, &vectors["context"]) else {
            continue;
        };
        let err = match outcome {
            Err(err) => err,
            Ok(()) => panic!("{id}: the core raised nothing"),
        };
        if matches!(
            err,
            Error::NotAContainer { .. } | Error::KeyMissing { .. } | Error::IndexOutOfRange { .. }
        ) {
            continue; // the Python layer words these, naming the dotted path written
        }
        let Some(message) = shown(&err, class) else {
            panic!("{id}: expected {class}, the core raised {err:?}");
        };
        assert_eq!(message, case["message"].as_str().unwrap(), "{id}");
        checked += 1;
    }
    assert!(checked >= 18, "only {checked} vectors were expressible in the core");
}
