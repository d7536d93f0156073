//! [`Store`]: the current snapshot of one engine, its commit lock and its commit history.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::{ArcMutexGuard, Mutex, RawMutex};

use crate::contract::Contract;
use crate::error::{Error, Result};
use crate::map::PMap;
use crate::path::{segment_error, Path};
use crate::snapshot::Snapshot;
use crate::transaction::Transaction;
use crate::value::Value;

/// How many commits' write sets the store keeps for conflict detection (spec `05` asks for at
/// least 1024). A transaction whose base is older conflicts.
pub const HISTORY_CAPACITY: usize = 1024;

/// The state of one engine: the current snapshot (read lock-free), the commit lock and the
/// history ring of recent commits' write sets. Cheap to clone (shared); nothing is global.
pub struct Store<L: Clone>(Arc<Shared<L>>);

struct Shared<L: Clone> {
    current: ArcSwap<Snapshot<L>>,
    commits: Arc<Mutex<History>>,
    host: Arc<Contract>,
}

/// The write sets (minimal written paths) of the last [`HISTORY_CAPACITY`] commits.
pub(crate) struct History {
    entries: VecDeque<(u64, Arc<[Path]>)>,
}

impl History {
    /// The write sets of the commits after `base`, oldest first, or `None` if some are no
    /// longer kept. `latest` is the current version.
    pub(crate) fn since(
        &self,
        base: u64,
        latest: u64,
    ) -> Option<impl Iterator<Item = &(u64, Arc<[Path]>)>> {
        let behind = usize::try_from(latest - base).ok()?;
        (behind <= self.entries.len()).then(|| self.entries.range(self.entries.len() - behind..))
    }
}

/// Holding this serialises commits (spec `05`: a short critical section). Obtained from
/// [`Store::lock_commits`]; pass it to [`Transaction::commit_locked`], publish the commit's
/// signals while still holding it (so publication follows commit order), then drop it.
///
/// The guard owns what it locks (no lifetime), so an exclusive transaction can keep it from
/// `begin` to `close`; it is `Send` so the Python crate can acquire it with the GIL released.
pub struct CommitGuard<L: Clone> {
    history: ArcMutexGuard<RawMutex, History>,
    store: Store<L>,
    // Declared after `history`: the replaced snapshot is freed after the lock is released.
    retired: Vec<Arc<Snapshot<L>>>,
}

impl<L: Clone + Send + Sync + 'static> Store<L> {
    /// A store whose version 0 is `root` (namespace → map). Adds the `domain` and `global`
    /// namespaces when absent.
    ///
    /// Errors: [`Error::Type`] for a namespace that is not a map; [`Error::Context`] for an
    /// invalid key anywhere in the tree (spec `01`).
    pub fn new(root: PMap<L>) -> Result<Store<L>> {
        let mut root = root;
        for (name, value) in root.iter() {
            if let Some(why) = segment_error(name) {
                return Err(Error::Context {
                    path: Path::root(),
                    detail: format!("invalid namespace name {name:?}: {why}"),
                });
            }
            if !matches!(value, Value::Map(_)) {
                return Err(Error::Type {
                    detail: format!(
                        "namespace '{name}' must be a mapping, not a {}",
                        value.kind()
                    ),
                });
            }
            value.validate_keys(&Path::from_trusted(std::slice::from_ref(name)))?;
        }
        for name in ["domain", "global"] {
            if !root.contains_key(name) {
                root.insert(name.into(), Value::empty_map());
            }
        }
        let snapshot = Snapshot::new(0, root, Vec::new());
        Ok(Store(Arc::new(Shared {
            current: ArcSwap::from_pointee(snapshot),
            commits: Arc::new(Mutex::new(History {
                entries: VecDeque::with_capacity(HISTORY_CAPACITY),
            })),
            host: Arc::new(Contract::unrestricted()),
        })))
    }

    /// The current snapshot (lock-free).
    #[inline]
    pub fn current(&self) -> Arc<Snapshot<L>> {
        self.0.current.load_full()
    }

    /// The current version.
    pub fn version(&self) -> u64 {
        self.0.current.load().version()
    }

    /// Open a transaction on the current snapshot, bound by `contract`. With
    /// `strict_guards = false`, reads outside the contract are allowed (and recorded).
    pub fn begin(&self, contract: Arc<Contract>, strict_guards: bool) -> Transaction<L> {
        Transaction::new(self.clone(), self.current(), contract, strict_guards)
    }

    /// Open a host transaction: no contract (zone rules still apply).
    pub fn begin_host(&self) -> Transaction<L> {
        self.begin(Arc::clone(&self.0.host), true)
    }

    /// Take the commit lock (blocks while another commit is in its critical section).
    pub fn lock_commits(&self) -> CommitGuard<L> {
        CommitGuard {
            history: self.0.commits.lock_arc(),
            store: self.clone(),
            retired: Vec::new(),
        }
    }

    /// Take the commit lock if it is free.
    pub fn try_lock_commits(&self) -> Option<CommitGuard<L>> {
        Some(CommitGuard {
            history: self.0.commits.try_lock_arc()?,
            store: self.clone(),
            retired: Vec::new(),
        })
    }

    /// Whether two handles are the same store.
    pub fn same_as(&self, other: &Store<L>) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<L: Clone> Clone for Store<L> {
    fn clone(&self) -> Self {
        Store(Arc::clone(&self.0))
    }
}

impl<L: Clone + Send + Sync + 'static> fmt::Debug for Store<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("version", &self.version())
            .finish()
    }
}

impl<L: Clone + Send + Sync + 'static> CommitGuard<L> {
    /// The current snapshot (stable while the guard is held).
    pub fn current(&self) -> Arc<Snapshot<L>> {
        self.store.current()
    }

    pub(crate) fn store(&self) -> &Store<L> {
        &self.store
    }

    pub(crate) fn history(&self) -> &History {
        &self.history
    }

    /// Make `snapshot` current and remember its write set.
    pub(crate) fn install(&mut self, snapshot: Arc<Snapshot<L>>, writes: Arc<[Path]>) {
        let version = snapshot.version();
        self.retired.push(self.store.0.current.swap(snapshot));
        if self.history.entries.len() == HISTORY_CAPACITY {
            self.history.entries.pop_front();
        }
        self.history.entries.push_back((version, writes));
    }
}
