//! Helpers shared by the integration tests (leaves are `i64`).
#![allow(dead_code)]

use std::sync::Arc;

use theus_core::{
    Contract, Lookup, PList, PMap, Path, Semantic, Snapshot, Store, Transaction, Value,
};

pub type V = Value<i64>;

pub fn p(text: &str) -> Path {
    Path::parse(text).unwrap()
}

pub fn leaf(n: i64) -> V {
    Value::Leaf(n)
}

pub fn map(pairs: &[(&str, V)]) -> V {
    Value::Map(
        pairs
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect::<PMap<i64>>(),
    )
}

pub fn list(items: &[i64]) -> V {
    Value::List(
        items
            .iter()
            .map(|n| Value::Leaf(*n))
            .collect::<PList<i64>>(),
    )
}

/// A store whose `domain` namespace is `domain` (a map value) and `global` is empty.
pub fn store(domain: V) -> Store<i64> {
    let root: PMap<i64> = [("domain", domain)].into_iter().collect();
    Store::new(root).unwrap()
}

pub fn contract(inputs: &[&str], outputs: &[&str]) -> Arc<Contract> {
    contract_with(inputs, outputs, Semantic::Effect)
}

pub fn contract_with(inputs: &[&str], outputs: &[&str], semantic: Semantic) -> Arc<Contract> {
    Arc::new(Contract::compile("proc", inputs, outputs, semantic).unwrap())
}

/// The leaf at `path` in a snapshot.
pub fn leaf_at(snapshot: &Snapshot<i64>, path: &str) -> Option<i64> {
    snapshot.get(&p(path)).and_then(|v| v.as_leaf().copied())
}

/// Guarded read of a whole path that must end on a leaf.
pub fn read_leaf(tx: &mut Transaction<i64>, path: &str) -> theus_core::Result<i64> {
    match tx.read(&p(path))? {
        Lookup::Leaf(n) => Ok(n),
        Lookup::Node(node) => panic!("{path} is a container: {:?}", node.path()),
    }
}

/// Increment the counter at `path` in a host transaction and commit.
pub fn host_set(store: &Store<i64>, path: &str, value: V) -> Arc<Snapshot<i64>> {
    let mut tx = store.begin_host();
    tx.set(&p(path), value).unwrap();
    tx.commit(false).unwrap().into_snapshot()
}
