//! Guarded writes (spec 04), zones (03), semantics (04), deletes (07).

mod common;

use common::*;
use theus_core::{Error, Semantic, Value};

fn domain() -> V {
    map(&[
        ("balance", leaf(100)),
        ("user", map(&[("name", leaf(1))])),
        ("items", list(&[10, 20, 30])),
        ("log_events", list(&[1])),
        ("heavy_blob", leaf(6)),
        ("meta_trace", leaf(5)),
    ])
}

fn violation<T: std::fmt::Debug>(r: theus_core::Result<T>) -> String {
    match r {
        Err(Error::ContractViolation { path, detail }) => format!("{path}: {detail}"),
        other => panic!("expected a contract violation, got {other:?}"),
    }
}

#[test]
fn write_outside_outputs_is_a_violation_and_changes_nothing() {
    let store = store(domain());
    let mut tx = store.begin(
        contract(&["domain.balance", "domain.user"], &["domain.balance"]),
        true,
    );
    let msg = violation(tx.set(&p("domain.user.name"), leaf(2)));
    assert!(
        msg.contains("domain.user.name") && msg.contains("outputs ['domain.balance']"),
        "{msg}"
    );
    assert!(!tx.wrote());
    assert!(tx.writes().is_empty());
    tx.set(&p("domain.balance"), leaf(1)).unwrap();
    assert!(tx.wrote());
    assert_eq!(tx.writes(), &[p("domain.balance")]);
}

#[test]
fn nothing_is_created_implicitly() {
    let store = store(domain());
    let mut tx = store.begin_host();
    match tx.set(&p("domain.a.b"), leaf(1)) {
        Err(Error::KeyMissing { path }) => assert_eq!(path, p("domain.a")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        tx.set(&p("domain.balance.x"), leaf(1)),
        Err(Error::NotAContainer { .. })
    ));
    assert!(matches!(
        tx.set(&p("nospace.x"), leaf(1)),
        Err(Error::KeyMissing { .. })
    ));
    assert!(matches!(
        tx.set(&p("domain.items.3"), leaf(1)),
        Err(Error::IndexOutOfRange { len: 3, .. })
    ));
    assert!(matches!(
        tx.set(&p("domain.items.x"), leaf(1)),
        Err(Error::IndexOutOfRange { len: 3, .. }) // spec/01: a list segment must be an index
    ));
    assert!(tx.writes().is_empty());
    assert!(
        tx.draft().ptr_eq(tx.base().root()),
        "failed writes leave the draft shared"
    );
}

#[test]
fn set_index_records_the_element_path() {
    let store = store(domain());
    let mut tx = store.begin(contract(&[], &["domain.items.*"]), true);
    tx.set(&p("domain.items.1"), leaf(21)).unwrap();
    assert_eq!(tx.writes(), &[p("domain.items.1")]);
    // Removing an item shifts the others: it needs the list's path.
    violation(tx.delete(&p("domain.items.0")));
    violation(tx.append(&p("domain.items"), leaf(1)));
}

#[test]
fn deletes() {
    let store = store(domain());
    let mut tx = store.begin(contract(&[], &["domain"]), true);
    assert_eq!(tx.delete(&p("domain.balance")).unwrap(), leaf(100));
    assert!(matches!(
        tx.delete(&p("domain.balance")),
        Err(Error::KeyMissing { .. })
    ));
    assert_eq!(tx.delete(&p("domain.items.0")).unwrap(), leaf(10));
    assert_eq!(tx.writes(), &[p("domain.balance"), p("domain.items")]);
    let snapshot = tx.commit(false).unwrap().into_snapshot();
    assert!(snapshot.get(&p("domain.balance")).is_none());
    assert_eq!(snapshot.get(&p("domain.items")), Some(&list(&[20, 30])));
    // Older snapshots still have it.
    let mut host = store.begin_host();
    assert!(matches!(
        host.delete(&p("domain")),
        Err(Error::Context { .. })
    ));
    assert!(matches!(
        host.delete(&p("global")),
        Err(Error::Context { .. })
    ));
    drop(host);
    assert_eq!(store.current().version(), 1);
}

#[test]
fn older_snapshots_keep_deleted_keys() {
    let store = store(domain());
    let before = store.current();
    let mut tx = store.begin_host();
    tx.delete(&p("domain.user")).unwrap();
    tx.commit(false).unwrap();
    assert!(before.get(&p("domain.user.name")).is_some());
    assert!(store.current().get(&p("domain.user")).is_none());
}

#[test]
fn list_operations() {
    let store = store(domain());
    let mut tx = store.begin(contract(&[], &["domain.items"]), true);
    tx.append(&p("domain.items"), leaf(40)).unwrap();
    tx.extend(&p("domain.items"), [leaf(50), leaf(60)]).unwrap();
    tx.insert(&p("domain.items"), 0, leaf(0)).unwrap();
    tx.insert(&p("domain.items"), 7, leaf(70)).unwrap();
    assert!(matches!(
        tx.insert(&p("domain.items"), 9, leaf(0)),
        Err(Error::IndexOutOfRange { .. })
    ));
    assert_eq!(tx.pop(&p("domain.items"), 1).unwrap(), leaf(10));
    assert!(matches!(
        tx.pop(&p("domain.items"), 7),
        Err(Error::IndexOutOfRange { len: 7, .. })
    ));
    assert_eq!(
        tx.draft().get("domain").unwrap().at(&["items"]).unwrap(),
        &list(&[0, 20, 30, 40, 50, 60, 70])
    );
    tx.clear(&p("domain.items")).unwrap();
    assert_eq!(
        tx.draft().get("domain").unwrap().at(&["items"]).unwrap(),
        &list(&[])
    );
    // Sort/reverse: the caller computes the list and assigns it whole.
    tx.set(&p("domain.items"), list(&[3, 2, 1])).unwrap();
    let mut host = store.begin_host();
    assert!(matches!(
        host.append(&p("domain.balance"), leaf(1)),
        Err(Error::NotAContainer { .. })
    ));
    assert!(matches!(
        host.append(&p("domain.none"), leaf(1)),
        Err(Error::KeyMissing { .. })
    ));
    host.clear(&p("domain.user")).unwrap();
    assert_eq!(host.get(&p("domain.user")).unwrap(), Some(map(&[])));
}

#[test]
fn log_zone_is_append_only() {
    let store = store(domain());
    let mut tx = store.begin(contract(&[], &["domain"]), true);
    tx.append(&p("domain.log_events"), leaf(2)).unwrap();
    tx.extend(&p("domain.log_events"), [leaf(3)]).unwrap();
    let msg = violation(tx.set(&p("domain.log_events"), list(&[])));
    assert!(
        msg.contains("log") && msg.contains("domain.log_events"),
        "{msg}"
    );
    violation(tx.set(&p("domain.log_events.0"), leaf(0)));
    violation(tx.insert(&p("domain.log_events"), 0, leaf(0)));
    violation(tx.pop(&p("domain.log_events"), 0));
    violation(tx.clear(&p("domain.log_events")));
    violation(tx.delete(&p("domain.log_events")));
    violation(tx.delete(&p("domain.log_events.0")));
    // Creating an absent log path with a list is allowed, with anything else not.
    violation(tx.set(&p("domain.log_new"), leaf(1)));
    tx.set(&p("domain.log_new"), list(&[1])).unwrap();
    violation(tx.set(&p("domain.log_new"), list(&[1])));
    let snapshot = tx.commit(false).unwrap().into_snapshot();
    assert_eq!(
        snapshot.get(&p("domain.log_events")),
        Some(&list(&[1, 2, 3]))
    );
    // The host is bound by the zone rules too.
    let mut host = store.begin_host();
    violation(host.set(&p("domain.log_events"), list(&[])));
}

#[test]
fn signals_go_to_the_signal_list_not_the_tree() {
    let store = store(domain());
    let mut tx = store.begin(contract(&[], &["domain.sig_done", "domain.cmd_stop"]), true);
    tx.set(&p("domain.sig_done"), leaf(1)).unwrap();
    tx.set(&p("domain.cmd_stop"), leaf(2)).unwrap();
    tx.set(&p("domain.sig_done"), leaf(3)).unwrap();
    assert!(tx.wrote());
    assert!(
        tx.writes().is_empty(),
        "signal writes are not in the write set"
    );
    assert_eq!(
        tx.signals(),
        &[(p("domain.sig_done"), 3), (p("domain.cmd_stop"), 2)]
    );
    violation(tx.delete(&p("domain.sig_done")));
    violation(tx.append(&p("domain.sig_done"), leaf(1)));
    assert!(matches!(
        tx.set(&p("domain.sig_done"), map(&[])),
        Err(Error::Context { .. })
    ));
    let committed = tx.commit(false).unwrap();
    assert!(committed.is_new_version());
    let snapshot = committed.snapshot();
    assert!(
        snapshot.get(&p("domain.sig_done")).is_none(),
        "not in the tree"
    );
    assert_eq!(snapshot.signal(&p("domain.sig_done")), Some(&3));
    assert_eq!(committed.signals().len(), 2);
    // Not covered: a violation even for signals.
    let mut other = store.begin(contract(&[], &["domain.sig_done"]), true);
    violation(other.set(&p("domain.sig_other"), leaf(1)));
}

#[test]
fn heavy_values_are_opaque_leaves() {
    let store = store(domain());
    let mut tx = store.begin_host();
    match tx.set(&p("domain.heavy_blob.x"), leaf(1)) {
        Err(Error::Context { path, detail }) => {
            assert_eq!(path, p("domain.heavy_blob.x"));
            assert!(detail.contains("domain.heavy_blob"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        tx.set(&p("domain.heavy_x.meta_y"), leaf(1)),
        Err(Error::Context { .. })
    ));
    assert!(matches!(
        tx.append(&p("domain.heavy_blob"), leaf(1)),
        Err(Error::NotAContainer { .. })
    ));
    tx.set(&p("domain.heavy_blob"), leaf(7)).unwrap();
    tx.delete(&p("domain.heavy_blob")).unwrap();
}

#[test]
fn pure_semantic() {
    let store = store(domain());
    let pure = contract_with(&[], &["domain.*"], Semantic::Pure);
    let mut tx = store.begin(pure, true);
    tx.set(&p("domain.balance"), leaf(1)).unwrap();
    let msg = violation(tx.set(&p("domain.meta_trace"), leaf(1)));
    assert!(msg.contains("pure"), "{msg}");
    violation(tx.set(&p("domain.sig_x"), leaf(1)));
}

#[test]
fn guide_semantic() {
    let store = store(domain());
    let guide = contract_with(&["domain.balance"], &["domain.*"], Semantic::Guide);
    let mut tx = store.begin(guide, true);
    let msg = violation(tx.set(&p("domain.balance"), leaf(1)));
    assert!(msg.contains("guide"), "{msg}");
    tx.set(&p("domain.sig_next"), leaf(1)).unwrap();
    tx.set(&p("domain.meta_trace"), leaf(2)).unwrap();
    violation(tx.delete(&p("domain.user")));
}

#[test]
fn namespaces() {
    let store = store(domain());
    let mut host = store.begin_host();
    // Namespaces are fixed (spec 01): neither created nor deleted.
    assert!(matches!(
        host.set(&p("extra"), map(&[("a", leaf(1))])),
        Err(Error::Context { .. })
    ));
    assert!(matches!(
        host.delete(&p("domain")),
        Err(Error::Context { .. })
    ));
    assert!(matches!(
        host.set(&theus_core::Path::root(), leaf(1)),
        Err(Error::Context { .. })
    ));
    // Construction: namespaces must be maps, keys valid; domain and global always exist.
    let bad: theus_core::PMap<i64> = [("domain", leaf(1))].into_iter().collect();
    assert!(matches!(
        theus_core::Store::new(bad),
        Err(Error::Type { .. })
    ));
    let bad_key: theus_core::PMap<i64> =
        [("domain", map(&[("a.b", leaf(1))]))].into_iter().collect();
    assert!(matches!(
        theus_core::Store::new(bad_key),
        Err(Error::Context { .. })
    ));
    let empty = theus_core::Store::<i64>::new(theus_core::PMap::new()).unwrap();
    assert!(empty.current().namespace("domain").is_some());
    assert!(empty.current().namespace("global").is_some());
    assert_eq!(empty.current().version(), 0);
}

#[test]
fn validate_keys_names_the_path() {
    let value: V = map(&[("ok", map(&[("**", leaf(1))]))]);
    match value.validate_keys(&p("domain.x")) {
        Err(Error::Context { path, .. }) => assert_eq!(path, p("domain.x.ok")),
        other => panic!("{other:?}"),
    }
    assert!(Value::<i64>::empty_map()
        .validate_keys(&p("domain"))
        .is_ok());
}

#[test]
fn namespaces_are_fixed() {
    let store = store(map(&[("a", leaf(1))]));
    let mut tx = store.begin_host();
    // creating or deleting a namespace: a context error; replacing one needs a map
    assert!(matches!(
        tx.set(&p("extra"), map(&[])),
        Err(Error::Context { .. })
    ));
    assert!(matches!(
        tx.delete(&p("global")),
        Err(Error::Context { .. })
    ));
    assert!(matches!(
        tx.set(&p("domain"), leaf(3)),
        Err(Error::Type { .. })
    ));
    tx.set(&p("domain"), map(&[("b", leaf(2))])).unwrap();
    let snapshot = tx.commit(false).unwrap().into_snapshot();
    assert_eq!(leaf_at(&snapshot, "domain.b"), Some(2));
    assert_eq!(leaf_at(&snapshot, "domain.a"), None);
}

#[test]
fn a_rewritten_signal_keeps_its_first_position() {
    let store = store(map(&[]));
    let mut tx = store.begin_host();
    tx.set(&p("domain.sig_a"), leaf(1)).unwrap();
    tx.set(&p("domain.sig_b"), leaf(2)).unwrap();
    tx.set(&p("domain.sig_a"), leaf(3)).unwrap();
    let committed = tx.commit(false).unwrap();
    assert_eq!(
        committed.signals(),
        &[(p("domain.sig_a"), 3), (p("domain.sig_b"), 2)]
    );
}

#[test]
fn appending_to_a_missing_log_is_a_missing_key() {
    let store = store(map(&[]));
    let mut tx = store.begin_host();
    assert!(matches!(
        tx.append(&p("domain.log_x"), leaf(1)),
        Err(Error::KeyMissing { .. })
    ));
    tx.set(&p("domain.log_x"), list(&[])).unwrap();
    tx.append(&p("domain.log_x"), leaf(1)).unwrap();
    assert!(matches!(
        tx.set(&p("domain.log_x"), list(&[])),
        Err(Error::ContractViolation { .. })
    ));
}

fn with_meta() -> V {
    map(&[
        ("m", map(&[("a", leaf(1)), ("meta_audit", leaf(2))])),
        (
            "lst",
            V::List(
                [map(&[("meta_t", leaf(0))]), leaf(1), map(&[("v", leaf(2))])]
                    .into_iter()
                    .collect(),
            ),
        ),
        ("plain", map(&[("p", leaf(1))])),
        (
            "log_l",
            V::List([map(&[("meta_in_log", leaf(1))])].into_iter().collect()),
        ),
    ])
}

#[test]
fn pure_writes_that_touch_meta_values_are_refused() {
    let store = store(with_meta());
    let pure = || contract_with(&["domain.**"], &["domain.**"], Semantic::Pure);
    let meta_map = || map(&[("meta_x", leaf(1))]);
    type Op = Box<dyn Fn(&mut theus_core::Transaction<i64>) -> theus_core::Result<()>>;
    let refused: Vec<(&str, Op)> = vec![
        (
            "domain.new.meta_x",
            Box::new(move |tx| tx.set(&p("domain.new"), meta_map())),
        ),
        (
            "domain.m.meta_audit",
            Box::new(|tx| tx.set(&p("domain.m"), leaf(0))),
        ),
        (
            "domain.m.meta_audit",
            Box::new(|tx| tx.delete(&p("domain.m")).map(|_| ())),
        ),
        (
            "domain.lst.0.meta_t",
            Box::new(|tx| tx.delete(&p("domain.lst.0")).map(|_| ())),
        ),
        (
            "domain.lst.0.meta_t",
            Box::new(|tx| tx.pop(&p("domain.lst"), 0).map(|_| ())),
        ),
        (
            "domain.lst.0.meta_t",
            Box::new(|tx| tx.insert(&p("domain.lst"), 0, leaf(9))),
        ),
        (
            "domain.lst.0.meta_t",
            Box::new(|tx| tx.clear(&p("domain.lst"))),
        ),
        (
            "domain.m.meta_audit",
            Box::new(|tx| tx.clear(&p("domain.m"))),
        ),
        (
            "domain.lst.3.meta_x",
            Box::new(|tx| tx.append(&p("domain.lst"), map(&[("meta_x", leaf(1))]))),
        ),
        (
            "domain.lst.0.meta_t",
            Box::new(|tx| tx.rewrite_list(&p("domain.lst"), [leaf(1)].into_iter().collect())),
        ),
        (
            "domain.m.meta_audit",
            Box::new(|tx| tx.refuse_meta_below(&p("domain.m"))),
        ),
        (
            "domain.lst.0.meta_t",
            Box::new(|tx| tx.set(&p("domain"), map(&[]))),
        ),
    ];
    for (hit, op) in refused {
        let mut tx = store.begin(pure(), true);
        let msg = violation(op(&mut tx));
        assert!(msg.starts_with(hit) || msg.contains(hit), "{hit}: {msg}");
        assert!(
            tx.writes().is_empty() && !tx.wrote(),
            "{hit}: nothing is written"
        );
    }
    // beside meta values, or below another zone: allowed
    let mut tx = store.begin(pure(), true);
    tx.set(&p("domain.m.a"), leaf(5)).unwrap();
    tx.append(&p("domain.lst"), leaf(4)).unwrap();
    tx.pop(&p("domain.lst"), 3).unwrap();
    tx.pop(&p("domain.lst"), 1).unwrap(); // the meta item stays at 0
    tx.set(&p("domain.plain"), map(&[("q", leaf(1))])).unwrap();
    tx.append(&p("domain.log_l"), map(&[("meta_ok", leaf(1))]))
        .unwrap();
    tx.refuse_meta_below(&p("domain.plain")).unwrap();
    // an effect process writes meta values as data
    let mut tx = store.begin(contract(&["domain.**"], &["domain.**"]), true);
    tx.delete(&p("domain.m")).unwrap();
    tx.clear(&p("domain.lst")).unwrap();
}

#[test]
fn pure_whole_reads_do_not_see_meta_values() {
    use theus_core::Lookup;
    let store = store(with_meta());
    let mut tx = store.begin(contract_with(&["domain.**"], &[], Semantic::Pure), true);
    let root = tx.root_node();
    let Ok(Lookup::Node(domain)) = tx.child(&root, "domain") else {
        panic!("domain is a map")
    };
    let Ok(Lookup::Node(m)) = tx.child(&domain, "m") else {
        panic!("m is a map")
    };
    let shallow = tx.observe_visible(&m, false).unwrap();
    assert_eq!(shallow.as_map().unwrap().len(), 1);
    let deep = tx.observe_visible(&domain, true).unwrap();
    let lst = deep
        .as_map()
        .unwrap()
        .get("lst")
        .unwrap()
        .as_list()
        .unwrap();
    assert_eq!(lst.get(0).unwrap().as_map().unwrap().len(), 0);
    let log = deep
        .as_map()
        .unwrap()
        .get("log_l")
        .unwrap()
        .as_list()
        .unwrap();
    assert_eq!(log.get(0).unwrap().as_map().unwrap().len(), 1);
    assert_eq!(tx.observe(&m).unwrap().as_map().unwrap().len(), 2); // the raw read
}
