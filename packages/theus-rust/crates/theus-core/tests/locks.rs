//! The commit lock knows its owner (re-entry fails at once), frees what a commit replaced only
//! after it is released, and `close` refuses every later commit.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use theus_core::{Error, PMap, Path, Store, Value};

fn p(text: &str) -> Path {
    Path::parse(text).unwrap()
}

/// A leaf that, when its last clone is dropped, records whether the commit lock of its store
/// was free at that moment.
#[derive(Clone)]
struct Probe(#[allow(dead_code)] Arc<ProbeInner>); // held for its drop only

struct ProbeInner {
    store: Arc<OnceLock<Store<Probe>>>,
    dropped_locked: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl Drop for ProbeInner {
    fn drop(&mut self) {
        if let Some(store) = self.store.get() {
            if !matches!(store.try_lock_commits(), Ok(Some(_))) {
                self.dropped_locked.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

struct Probes {
    store: Arc<OnceLock<Store<Probe>>>,
    dropped_locked: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl Probes {
    fn new() -> Probes {
        Probes {
            store: Arc::new(OnceLock::new()),
            dropped_locked: Arc::new(AtomicUsize::new(0)),
            dropped: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn probe(&self) -> (Value<Probe>, Weak<ProbeInner>) {
        let inner = Arc::new(ProbeInner {
            store: Arc::clone(&self.store),
            dropped_locked: Arc::clone(&self.dropped_locked),
            dropped: Arc::clone(&self.dropped),
        });
        let weak = Arc::downgrade(&inner);
        (Value::Leaf(Probe(inner)), weak)
    }

    fn store(&self, domain: PMap<Probe>) -> Store<Probe> {
        let root: PMap<Probe> = [("domain", Value::Map(domain))].into_iter().collect();
        let store = Store::new(root).unwrap();
        let _ = self.store.set(store.clone());
        store
    }
}

#[test]
fn replaced_values_are_freed_by_their_commit_after_the_lock_is_released() {
    let probes = Probes::new();
    let (first, first_weak) = probes.probe();
    let (nested, nested_weak) = probes.probe();
    let inner: PMap<Probe> = [("v", nested)].into_iter().collect();
    let domain: PMap<Probe> = [
        ("heavy_x", first),
        ("m", Value::Map(inner)),
        ("other", probes.probe().0),
    ]
    .into_iter()
    .collect();
    let store = probes.store(domain);
    // Several overwrites in a row, a nested key, a delete: each replaced value dies in the
    // commit that replaced it (no snapshot is held).
    for round in 0..20 {
        let mut tx = store.begin_host();
        let (value, weak) = probes.probe();
        tx.set(&p("domain.heavy_x"), value).unwrap();
        tx.commit(false).unwrap();
        assert!(first_weak.upgrade().is_none(), "round {round}");
        assert!(weak.upgrade().is_some());
        let mut other = store.begin_host();
        other
            .set(&p(&format!("domain.k{round}")), probes.probe().0)
            .unwrap();
        other.commit(false).unwrap();
    }
    let mut tx = store.begin_host();
    tx.set(&p("domain.m.v"), probes.probe().0).unwrap();
    tx.commit(false).unwrap();
    assert!(nested_weak.upgrade().is_none());
    let mut tx = store.begin_host();
    tx.delete(&p("domain.m")).unwrap();
    tx.commit(false).unwrap();
    assert_eq!(probes.dropped_locked.load(Ordering::SeqCst), 0);
    assert!(probes.dropped.load(Ordering::SeqCst) >= 22);
}

#[test]
fn a_losing_transaction_is_freed_after_the_lock_is_released() {
    let probes = Probes::new();
    let store = probes.store([("a", probes.probe().0)].into_iter().collect());
    let mut loser = store.begin_host();
    let _ = loser.read(&p("domain.a")).unwrap();
    let (value, weak) = probes.probe();
    loser.set(&p("domain.b"), value).unwrap();
    let mut winner = store.begin_host();
    winner.set(&p("domain.a"), probes.probe().0).unwrap();
    winner.commit(false).unwrap();
    assert!(matches!(loser.commit(false), Err(Error::Conflict { .. })));
    assert!(weak.upgrade().is_none());
    assert_eq!(probes.dropped_locked.load(Ordering::SeqCst), 0);
    assert!(probes.dropped.load(Ordering::SeqCst) >= 2);
}

#[test]
fn the_holder_re_entering_the_commit_lock_fails_at_once() {
    let probes = Probes::new();
    let store = probes.store(PMap::new());
    let guard = store.lock_commits().unwrap();
    assert!(matches!(store.lock_commits(), Err(Error::Nested { .. })));
    assert!(matches!(
        store.try_lock_commits(),
        Err(Error::Nested { .. })
    ));
    let mut tx = store.begin_host();
    tx.set(&p("domain.a"), probes.probe().0).unwrap();
    assert!(matches!(tx.commit(false), Err(Error::Nested { .. })));
    assert!(matches!(store.close(), Err(Error::Nested { .. })));
    // Another thread is not nested: it sees the lock taken, then gets it once released.
    let other = store.clone();
    let busy = std::thread::spawn(move || other.try_lock_commits().map(|g| g.is_some()));
    assert!(matches!(busy.join().unwrap(), Ok(false)));
    let other = store.clone();
    let waiter = std::thread::spawn(move || other.lock_commits().map(|_| ()));
    drop(guard);
    assert!(waiter.join().unwrap().is_ok());
    assert!(matches!(store.try_lock_commits(), Ok(Some(_))));
    let mut tx = store.begin_host();
    tx.set(&p("domain.a"), probes.probe().0).unwrap();
    assert_eq!(tx.commit(false).unwrap().snapshot().version(), 1);
}

#[test]
fn a_guard_released_on_another_thread_frees_the_owner() {
    let probes = Probes::new();
    let store = probes.store(PMap::new());
    let guard = store.lock_commits().unwrap();
    std::thread::spawn(move || drop(guard)).join().unwrap();
    assert!(store.lock_commits().is_ok());
}

#[test]
fn close_waits_for_the_holder_then_refuses_every_commit() {
    let probes = Probes::new();
    let store = probes.store(PMap::new());
    let guard = store.lock_commits().unwrap();
    let closed = Arc::new(AtomicBool::new(false));
    let closer = {
        let (store, closed) = (store.clone(), Arc::clone(&closed));
        std::thread::spawn(move || {
            store.close().unwrap();
            closed.store(true, Ordering::SeqCst);
        })
    };
    // A commit under the held lock still lands: close waits for it.
    let mut tx = store.begin_host();
    tx.set(&p("domain.a"), probes.probe().0).unwrap();
    let mut guard = guard;
    assert_eq!(
        tx.commit_locked(&mut guard, false)
            .unwrap()
            .snapshot()
            .version(),
        1
    );
    assert!(!closed.load(Ordering::SeqCst));
    drop(guard);
    closer.join().unwrap();
    assert!(store.is_closed());
    for strict in [false, true] {
        let mut tx = store.begin_host();
        tx.set(&p("domain.a"), probes.probe().0).unwrap();
        assert!(matches!(tx.commit(strict), Err(Error::Closed)));
        let empty = store.begin_host();
        assert!(matches!(empty.commit(strict), Err(Error::Closed)));
    }
    assert_eq!(store.version(), 1);
    store.close().unwrap(); // idempotent
    assert_eq!(probes.dropped_locked.load(Ordering::SeqCst), 0);
}
