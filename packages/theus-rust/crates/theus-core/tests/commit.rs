//! Commit (spec 05): fast path, merges, conflicts, CAS, history, signals, structural sharing.

mod common;

use std::sync::Arc;

use common::*;
use theus_core::{Error, PMap, Store, Value, HISTORY_CAPACITY};

fn two_counters() -> Store<i64> {
    store(map(&[
        ("a", leaf(0)),
        ("b", leaf(0)),
        ("nested", map(&[("x", leaf(0)), ("y", leaf(0))])),
    ]))
}

#[test]
fn fast_path_swaps_the_draft_in() {
    let store = two_counters();
    let mut tx = store.begin(contract(&["domain.a"], &["domain.a"]), true);
    let n = read_leaf(&mut tx, "domain.a").unwrap();
    tx.set(&p("domain.a"), leaf(n + 1)).unwrap();
    let draft = tx.draft().clone();
    let committed = tx.commit(false).unwrap();
    assert!(committed.is_new_version());
    assert_eq!(committed.snapshot().version(), 1);
    assert!(
        committed.snapshot().root().ptr_eq(&draft),
        "the draft itself became the snapshot"
    );
    assert!(Arc::ptr_eq(committed.snapshot(), &store.current()));
    assert_eq!(leaf_at(&store.current(), "domain.a"), Some(1));
}

#[test]
fn a_transaction_that_wrote_nothing_commits_no_version() {
    let store = two_counters();
    let before = store.current();
    let mut tx = store.begin(contract(&["domain.a"], &[]), true);
    read_leaf(&mut tx, "domain.a").unwrap();
    host_set(&store, "domain.b", leaf(5)); // something else lands meanwhile
    let committed = tx.commit(false).unwrap();
    assert!(!committed.is_new_version());
    assert!(committed.signals().is_empty());
    assert_eq!(
        committed.snapshot().version(),
        1,
        "the current snapshot is returned"
    );
    assert_ne!(before.version(), store.current().version());
    // And a transaction with no reads either.
    let empty = store.begin_host();
    assert!(Arc::ptr_eq(
        empty.commit(true).unwrap().snapshot(),
        &store.current()
    ));
    // An empty compare-and-swap on a stale version still conflicts.
    let stale = store.begin_host();
    host_set(&store, "domain.b", leaf(6));
    assert!(matches!(stale.commit(true), Err(Error::Conflict { .. })));
}

#[test]
fn disjoint_changes_merge() {
    let store = two_counters();
    let mut t1 = store.begin(contract(&["domain.a"], &["domain.a"]), true);
    let mut t2 = store.begin(
        contract(&["domain.b"], &["domain.b", "domain.nested.y"]),
        true,
    );
    let a = read_leaf(&mut t1, "domain.a").unwrap();
    t1.set(&p("domain.a"), leaf(a + 1)).unwrap();
    let b = read_leaf(&mut t2, "domain.b").unwrap();
    t2.set(&p("domain.b"), leaf(b + 10)).unwrap();
    t2.set(&p("domain.nested.y"), leaf(7)).unwrap();
    t1.commit(false).unwrap();
    let snapshot = t2.commit(false).unwrap().into_snapshot();
    assert_eq!(snapshot.version(), 2);
    assert_eq!(leaf_at(&snapshot, "domain.a"), Some(1));
    assert_eq!(leaf_at(&snapshot, "domain.b"), Some(10));
    assert_eq!(leaf_at(&snapshot, "domain.nested.y"), Some(7));
    assert_eq!(leaf_at(&snapshot, "domain.nested.x"), Some(0));
}

#[test]
fn merged_deletes_and_creations_carry_over() {
    let store = two_counters();
    let mut t1 = store.begin_host();
    t1.delete(&p("domain.nested")).unwrap();
    t1.set(&p("domain.c"), map(&[("z", leaf(1))])).unwrap();
    t1.set(&p("domain.c.z"), leaf(2)).unwrap();
    host_set(&store, "domain.a", leaf(9));
    let snapshot = t1.commit(false).unwrap().into_snapshot();
    assert!(snapshot.get(&p("domain.nested")).is_none());
    assert_eq!(leaf_at(&snapshot, "domain.c.z"), Some(2));
    assert_eq!(leaf_at(&snapshot, "domain.a"), Some(9));
}

#[test]
fn write_write_conflict() {
    let store = two_counters();
    let mut t1 = store.begin_host();
    let mut t2 = store.begin_host();
    t1.set(&p("domain.a"), leaf(1)).unwrap();
    t2.set(&p("domain.a"), leaf(2)).unwrap();
    t1.commit(false).unwrap();
    let before = store.current();
    match t2.commit(false) {
        Err(Error::Conflict { path, detail }) => {
            assert_eq!(path, Some(p("domain.a")));
            assert!(
                detail.contains("version 1") && detail.contains("base version 0"),
                "{detail}"
            );
        }
        other => panic!("expected a conflict, got {:?}", other.err()),
    }
    assert!(Arc::ptr_eq(&before, &store.current()), "nothing committed");
}

#[test]
fn read_write_conflict_including_prefixes() {
    let store = two_counters();
    // Read a leaf below a path that a concurrent commit replaces.
    let mut t1 = store.begin(contract(&["domain.nested.x"], &["domain.b"]), true);
    read_leaf(&mut t1, "domain.nested.x").unwrap();
    t1.set(&p("domain.b"), leaf(1)).unwrap();
    host_set(&store, "domain.nested", map(&[]));
    assert!(matches!(t1.commit(false), Err(Error::Conflict { .. })));
    // Observe a container whose child a concurrent commit writes.
    let mut t2 = store.begin(contract(&["domain.nested"], &["domain.b"]), true);
    let Ok(theus_core::Lookup::Node(nested)) = t2.read(&p("domain.nested")) else {
        panic!()
    };
    t2.observe(&nested).unwrap();
    t2.set(&p("domain.b"), leaf(2)).unwrap();
    host_set(&store, "domain.nested.q", leaf(1));
    assert!(matches!(t2.commit(false), Err(Error::Conflict { .. })));
    // A missing-key read conflicts with its creation.
    let mut t3 = store.begin(contract(&["domain.new"], &["domain.b"]), true);
    assert!(t3.read(&p("domain.new")).is_err());
    t3.set(&p("domain.b"), leaf(3)).unwrap();
    host_set(&store, "domain.new", leaf(1));
    assert!(matches!(t3.commit(false), Err(Error::Conflict { .. })));
}

#[test]
fn navigation_alone_does_not_conflict() {
    let store = two_counters();
    let mut tx = store.begin(contract(&["domain.nested.x"], &["domain.nested.x"]), true);
    let n = read_leaf(&mut tx, "domain.nested.x").unwrap();
    tx.set(&p("domain.nested.x"), leaf(n + 1)).unwrap();
    host_set(&store, "domain.nested.y", leaf(5)); // a sibling: navigation through nested is fine
    let snapshot = tx.commit(false).unwrap().into_snapshot();
    assert_eq!(leaf_at(&snapshot, "domain.nested.x"), Some(1));
    assert_eq!(leaf_at(&snapshot, "domain.nested.y"), Some(5));
}

#[test]
fn strict_cas_refuses_any_intervening_commit() {
    let store = two_counters();
    let mut tx = store.begin_host();
    tx.set(&p("domain.a"), leaf(1)).unwrap();
    host_set(&store, "domain.b", leaf(1)); // disjoint, would merge without strict
    assert!(matches!(
        tx.commit(true),
        Err(Error::Conflict { path: None, .. })
    ));
    let mut tx = store.begin_host();
    tx.set(&p("domain.a"), leaf(1)).unwrap();
    assert_eq!(tx.commit(true).unwrap().snapshot().version(), 2);
}

#[test]
fn history_overflow_conflicts() {
    let store = two_counters();
    let mut old = store.begin_host();
    old.set(&p("domain.a"), leaf(-1)).unwrap();
    let mut almost = store.begin_host();
    almost.set(&p("domain.a"), leaf(-2)).unwrap();
    // `old` and `almost` are based on version 0; 1024 commits land.
    for i in 0..HISTORY_CAPACITY as i64 {
        host_set(&store, "domain.b", leaf(i));
    }
    // Exactly HISTORY_CAPACITY commits behind: still decidable (and disjoint: merges).
    assert_eq!(
        almost.commit(false).unwrap().snapshot().version(),
        HISTORY_CAPACITY as u64 + 1
    );
    // One more commit behind than the history keeps: conflict, even though disjoint.
    match old.commit(false) {
        Err(Error::Conflict { path: None, detail }) => assert!(detail.contains("1024"), "{detail}"),
        other => panic!("expected a conflict, got {:?}", other.err()),
    }
}

#[test]
fn signals_live_one_version() {
    let store = two_counters();
    let mut tx = store.begin_host();
    tx.set(&p("domain.sig_go"), leaf(1)).unwrap();
    let first = tx.commit(false).unwrap();
    assert_eq!(first.signals(), &[(p("domain.sig_go"), 1)]);
    let second = host_set(&store, "domain.a", leaf(1));
    assert!(second.signals().is_empty());
    assert_eq!(
        first.snapshot().signal(&p("domain.sig_go")),
        Some(&1),
        "old snapshot keeps them"
    );
}

#[test]
fn signals_are_published_under_the_commit_order() {
    let store = two_counters();
    let mut tx = store.begin_host();
    tx.set(&p("domain.sig_a"), leaf(1)).unwrap();
    tx.set(&p("domain.cmd_b"), leaf(2)).unwrap();
    let mut published = Vec::new();
    let committed = tx
        .commit_with(false, |c| {
            // Still under the commit lock: no other commit can slip in (and this thread
            // re-entering it is refused at once).
            assert!(matches!(
                store.try_lock_commits(),
                Err(Error::Nested { .. })
            ));
            for (path, value) in c.signals() {
                published.push((path.to_string(), *value, c.snapshot().version()));
            }
        })
        .unwrap();
    assert_eq!(
        published,
        [("domain.sig_a".into(), 1, 1), ("domain.cmd_b".into(), 2, 1)]
    );
    assert_eq!(committed.snapshot().version(), 1);
    // A failed commit publishes nothing.
    let mut t1 = store.begin_host();
    t1.set(&p("domain.a"), leaf(1)).unwrap();
    t1.set(&p("domain.sig_x"), leaf(1)).unwrap();
    host_set(&store, "domain.a", leaf(2));
    let mut called = false;
    assert!(t1.commit_with(false, |_| called = true).is_err());
    assert!(!called);
}

#[test]
fn explicit_commit_guard() {
    let store = two_counters();
    let mut tx = store.begin_host();
    tx.set(&p("domain.a"), leaf(3)).unwrap();
    let mut guard = store.lock_commits().unwrap();
    let committed = tx.commit_locked(&mut guard, false).unwrap();
    assert_eq!(guard.current().version(), 1);
    drop(guard);
    assert_eq!(committed.snapshot().version(), 1);
    assert!(store.try_lock_commits().unwrap().is_some());
}

#[test]
fn untouched_subtrees_are_shared_between_versions() {
    let root: PMap<i64> = [
        (
            "domain",
            map(&[("a", leaf(0)), ("big", map(&[("k", leaf(1))]))]),
        ),
        ("global", map(&[("cfg", leaf(1))])),
    ]
    .into_iter()
    .collect();
    let store = Store::new(root).unwrap();
    let v0 = store.current();
    let v1 = host_set(&store, "domain.a", leaf(1));
    assert!(v0
        .root()
        .get("global")
        .unwrap()
        .ptr_eq(v1.root().get("global").unwrap()));
    let big = |s: &theus_core::Snapshot<i64>| s.get(&p("domain.big")).unwrap().clone();
    assert!(big(&v0).ptr_eq(&big(&v1)));
    assert!(!v0
        .root()
        .get("domain")
        .unwrap()
        .ptr_eq(v1.root().get("domain").unwrap()));
    // Also through a merge.
    let mut tx = store.begin_host();
    tx.set(&p("domain.a"), leaf(5)).unwrap();
    host_set(&store, "domain.big.k", leaf(2));
    let v3 = tx.commit(false).unwrap().into_snapshot();
    assert!(v1
        .root()
        .get("global")
        .unwrap()
        .ptr_eq(v3.root().get("global").unwrap()));
    assert_eq!(leaf_at(&v3, "domain.big.k"), Some(2));
}

#[test]
fn commit_on_a_100k_key_map_does_not_copy_it() {
    // Leaves are `Arc`s: a copy of the namespace would clone every one of them (strong count 2
    // while the old version is alive); path copying clones only the few trie nodes on the way.
    let big: PMap<Arc<i64>> = (0..100_000)
        .map(|i| (Arc::from(format!("k{i}")), Value::Leaf(Arc::new(i))))
        .collect();
    let root: PMap<Arc<i64>> = [("domain", Value::Map(big))].into_iter().collect();
    let store = Store::new(root).unwrap();
    let v0 = store.current();
    let contract = contract(&["domain.k5"], &["domain.k5"]);
    let mut tx = store.begin(contract, true);
    let theus_core::Lookup::Leaf(n) = tx.read(&p("domain.k5")).unwrap() else {
        panic!()
    };
    tx.set(&p("domain.k5"), Value::Leaf(Arc::new(*n + 1)))
        .unwrap();
    let v1 = tx.commit(false).unwrap().into_snapshot();
    // A second, merged commit (rebased onto a newer root) must not copy either.
    let mut t2 = store.begin_host();
    t2.set(&p("domain.k7"), Value::Leaf(Arc::new(0))).unwrap();
    let mut t3 = store.begin_host();
    t3.set(&p("domain.k9"), Value::Leaf(Arc::new(0))).unwrap();
    t2.commit(false).unwrap();
    let v3 = t3.commit(false).unwrap().into_snapshot();
    assert_eq!(v3.version(), 3);
    let copied = v0
        .namespace("domain")
        .unwrap()
        .values()
        .filter(|v| Arc::strong_count(v.as_leaf().unwrap()) > 1)
        .count();
    assert!(
        copied < 500,
        "{copied} of 100 000 leaves were cloned by 3 commits"
    );
    assert_eq!(
        v1.get(&p("domain.k5")).unwrap().as_leaf().map(|n| **n),
        Some(6)
    );
    assert_eq!(
        v0.get(&p("domain.k5")).unwrap().as_leaf().map(|n| **n),
        Some(5)
    );
    assert_eq!(v3.namespace("domain").unwrap().len(), 100_000);
}
