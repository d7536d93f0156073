//! Guarded reads (spec 04), read recording (spec 05), zone rules on reads (spec 03).

mod common;

use std::sync::Arc;

use common::*;
use theus_core::{Error, Lookup, Semantic, Store, Value};

fn domain() -> V {
    map(&[
        ("balance", leaf(100)),
        ("user", map(&[("name", leaf(1)), ("age", leaf(2))])),
        (
            "users",
            map(&[("alice", map(&[("name", leaf(3)), ("age", leaf(4))]))]),
        ),
        ("items", list(&[10, 20, 30])),
        ("meta_trace", leaf(5)),
        ("heavy_blob", leaf(6)),
    ])
}

fn node(tx: &mut theus_core::Transaction<i64>, path: &str) -> theus_core::Node<i64> {
    match tx.read(&p(path)).unwrap() {
        Lookup::Node(n) => n,
        Lookup::Leaf(_) => panic!("{path} is a leaf"),
    }
}

#[test]
fn covered_leaf_read_is_recorded() {
    let store = store(domain());
    let mut tx = store.begin(contract(&["domain.balance"], &[]), true);
    assert_eq!(read_leaf(&mut tx, "domain.balance").unwrap(), 100);
    assert_eq!(tx.reads(), &[p("domain.balance")]);
    // The same lookup repeated through one node (a loop) is recorded once.
    let domain_node = node(&mut tx, "domain");
    for _ in 0..3 {
        assert!(matches!(
            tx.child(&domain_node, "balance").unwrap(),
            Lookup::Leaf(100)
        ));
    }
    assert_eq!(tx.reads(), &[p("domain.balance"), p("domain.balance")]);
}

#[test]
fn navigation_records_nothing() {
    let store = store(domain());
    let mut tx = store.begin(contract(&["domain.users.*.name"], &[]), true);
    let alice = node(&mut tx, "domain.users.alice");
    assert!(tx.reads().is_empty(), "navigation is not a read");
    assert!(matches!(tx.child(&alice, "name").unwrap(), Lookup::Leaf(3)));
    assert_eq!(tx.reads(), &[p("domain.users.alice.name")]);
    // A sibling not covered: a violation naming the path.
    match tx.child(&alice, "age") {
        Err(Error::ContractViolation { path, detail }) => {
            assert_eq!(path, p("domain.users.alice.age"));
            assert!(
                detail.contains("domain.users.*.name") && detail.contains("'proc'"),
                "{detail}"
            );
        }
        other => panic!("expected a violation, got {:?}", other.err()),
    }
}

#[test]
fn whole_container_read_of_navigated_path_is_a_violation() {
    let store = store(domain());
    let mut tx = store.begin(contract(&["domain.user.name"], &[]), true);
    let user = node(&mut tx, "domain.user");
    assert!(matches!(
        tx.observe(&user),
        Err(Error::ContractViolation { .. })
    ));
    let domain_node = node(&mut tx, "domain");
    assert!(matches!(
        tx.observe(&domain_node),
        Err(Error::ContractViolation { .. })
    ));
    assert!(tx.reads().is_empty());
}

#[test]
fn whole_container_read_of_covered_path_is_recorded() {
    let store = store(domain());
    let mut tx = store.begin(contract(&["domain.user"], &[]), true);
    let user = node(&mut tx, "domain.user");
    assert!(tx.reads().is_empty());
    let value = tx.observe(&user).unwrap();
    assert_eq!(value.as_map().unwrap().len(), 2);
    assert_eq!(tx.reads(), &[p("domain.user")]);
}

#[test]
fn violation_comes_before_existence() {
    let store = store(domain());
    let mut tx = store.begin(contract(&["domain.balance"], &[]), true);
    assert!(matches!(
        tx.read(&p("domain.nope")),
        Err(Error::ContractViolation { .. })
    ));
    // A leaf that a pattern leads past is not navigable: violation.
    let mut tx = store.begin(contract(&["domain.balance.x"], &[]), true);
    assert!(matches!(
        tx.read(&p("domain.balance")),
        Err(Error::ContractViolation { .. })
    ));
}

#[test]
fn missing_covered_key_is_recorded() {
    let store = store(domain());
    let mut tx = store.begin(contract(&["domain"], &[]), true);
    match tx.read(&p("domain.nope")) {
        Err(Error::KeyMissing { path }) => assert_eq!(path, p("domain.nope")),
        other => panic!("expected KeyMissing, got {:?}", other.err()),
    }
    assert_eq!(tx.reads(), &[p("domain.nope")]);
}

#[test]
fn list_indices() {
    let store = store(domain());
    let mut tx = store.begin(contract(&["domain.items"], &[]), true);
    assert_eq!(read_leaf(&mut tx, "domain.items.1").unwrap(), 20);
    assert!(matches!(
        tx.read(&p("domain.items.3")),
        Err(Error::KeyMissing { .. })
    ));
    assert!(matches!(
        tx.read(&p("domain.items.01")),
        Err(Error::KeyMissing { .. })
    ));
}

#[test]
fn lax_guards_allow_reads_and_record_them() {
    let store = store(domain());
    let mut tx = store.begin(contract(&[], &[]), false);
    assert_eq!(read_leaf(&mut tx, "domain.balance").unwrap(), 100);
    assert_eq!(tx.reads(), &[p("domain.balance")]);
    // Writes stay checked.
    assert!(matches!(
        tx.set(&p("domain.balance"), leaf(1)),
        Err(Error::ContractViolation { .. })
    ));
}

#[test]
fn read_your_writes_through_stale_nodes() {
    let store = store(domain());
    let mut tx = store.begin(contract(&["domain"], &["domain"]), true);
    let user = node(&mut tx, "domain.user");
    tx.set(&p("domain.user.name"), leaf(42)).unwrap();
    // The node was taken before the write; the lookup re-resolves.
    assert!(matches!(tx.child(&user, "name").unwrap(), Lookup::Leaf(42)));
    tx.set(&p("domain.fresh"), leaf(7)).unwrap();
    assert_eq!(read_leaf(&mut tx, "domain.fresh").unwrap(), 7);
    let domain_node = node(&mut tx, "domain");
    assert_eq!(tx.observe(&domain_node).unwrap().as_map().unwrap().len(), 7);
    // The base is untouched.
    assert_eq!(leaf_at(&store.current(), "domain.user.name"), Some(1));
    assert_eq!(leaf_at(tx.base(), "domain.user.name"), Some(1));
    // A node whose container was deleted reports it.
    tx.delete(&p("domain.user")).unwrap();
    assert!(matches!(
        tx.child(&user, "name"),
        Err(Error::KeyMissing { .. })
    ));
    let mut stale = user.clone();
    assert!(tx.refresh(&mut stale).is_err());
}

#[test]
fn pure_may_not_read_meta_even_through_wildcards() {
    let store = store(domain());
    let pure = contract_with(&["domain.*"], &[], Semantic::Pure);
    let mut tx = store.begin(pure, true);
    assert_eq!(read_leaf(&mut tx, "domain.balance").unwrap(), 100);
    match tx.read(&p("domain.meta_trace")) {
        Err(Error::ContractViolation { detail, .. }) => {
            assert!(detail.contains("pure"), "{detail}")
        }
        other => panic!("expected a violation, got {:?}", other.err()),
    }
    let mut effect = store.begin(contract(&["domain.*"], &[]), true);
    assert_eq!(read_leaf(&mut effect, "domain.meta_trace").unwrap(), 5);
}

#[test]
fn nothing_exists_below_a_heavy_key() {
    let store = store(domain());
    let mut tx = store.begin(contract(&["domain"], &[]), true);
    assert_eq!(read_leaf(&mut tx, "domain.heavy_blob").unwrap(), 6);
    // Even a map stored under a heavy key is opaque.
    let mut host = store.begin_host();
    host.set(&p("domain.heavy_map"), map(&[("x", leaf(1))]))
        .unwrap();
    assert!(matches!(
        host.read(&p("domain.heavy_map.x")),
        Err(Error::KeyMissing { .. })
    ));
    assert_eq!(host.get(&p("domain.heavy_map.x")).unwrap(), None);
    let snapshot = host.commit(false).unwrap().into_snapshot();
    assert!(snapshot.get(&p("domain.heavy_map.x")).is_none());
    assert!(snapshot.get(&p("domain.heavy_map")).is_some());
}

#[test]
fn heavy_identity_is_preserved() {
    let blob = Arc::new(vec![0u8; 1024]);
    let root: theus_core::PMap<Arc<Vec<u8>>> =
        [("domain", Value::empty_map())].into_iter().collect();
    let store = Store::new(root).unwrap();
    let mut tx = store.begin_host();
    tx.set(&p("domain.heavy_weights"), Value::Leaf(Arc::clone(&blob)))
        .unwrap();
    let snapshot = tx.commit(false).unwrap().into_snapshot();
    let stored = snapshot
        .get(&p("domain.heavy_weights"))
        .unwrap()
        .as_leaf()
        .unwrap();
    assert!(Arc::ptr_eq(stored, &blob));
    let mut reader = store.begin(contract(&["domain.heavy_weights"], &[]), true);
    match reader.read(&p("domain.heavy_weights")).unwrap() {
        Lookup::Leaf(obj) => assert!(Arc::ptr_eq(&obj, &blob)),
        Lookup::Node(_) => panic!("a heavy value is a leaf"),
    }
}

#[test]
fn signal_reads_see_own_writes_then_the_base_snapshot_signals() {
    let store = store(domain());
    let mut host = store.begin_host();
    host.set(&p("domain.sig_go"), leaf(9)).unwrap();
    host.commit(false).unwrap();
    let mut tx = store.begin(
        contract(&["domain.sig_go", "domain.sig_other"], &["domain.sig_go"]),
        true,
    );
    assert_eq!(read_leaf(&mut tx, "domain.sig_go").unwrap(), 9);
    assert!(matches!(
        tx.read(&p("domain.sig_other")),
        Err(Error::KeyMissing { .. })
    ));
    // Own signal writes are read back first (spec 03), then the base's signals.
    tx.set(&p("domain.sig_go"), leaf(10)).unwrap();
    assert_eq!(read_leaf(&mut tx, "domain.sig_go").unwrap(), 10);
    assert_eq!(
        tx.get(&p("domain.sig_go")).unwrap(),
        Some(theus_core::Value::Leaf(10))
    );
    assert!(tx.reads().is_empty(), "signal reads are not recorded");
    // Not covered: a violation.
    assert!(matches!(
        tx.read(&p("domain.sig_x")),
        Err(Error::ContractViolation { .. })
    ));
}

#[test]
fn host_get_reads_whole_values() {
    let store = store(domain());
    let mut tx = store.begin_host();
    let user = tx.get(&p("domain.user")).unwrap().unwrap();
    assert_eq!(user, map(&[("name", leaf(1)), ("age", leaf(2))]));
    assert_eq!(tx.get(&p("domain.none")).unwrap(), None);
    assert_eq!(tx.reads(), &[p("domain.user"), p("domain.none")]);
    let mut proc = store.begin(contract(&["domain.user.name"], &[]), true);
    assert!(matches!(
        proc.get(&p("domain.user")),
        Err(Error::ContractViolation { .. })
    ));
}

#[test]
fn invalid_keys_are_invalid_paths() {
    let store = store(domain());
    let mut tx = store.begin_host();
    let root = tx.root_node();
    assert!(matches!(
        tx.child(&root, "a.b"),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        tx.child(&root, ""),
        Err(Error::InvalidPath { .. })
    ));
}
