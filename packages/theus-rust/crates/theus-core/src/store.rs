//! [`Store`]: the current snapshot of one engine, its commit lock and its commit history.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// The [`thread_token`] of the thread holding `commits` (0: nobody). Written only by the
    /// holder, so a thread reading its own token here knows it holds the lock.
    owner: AtomicU64,
    /// Set by [`Store::close`] under the commit lock; never cleared.
    closed: AtomicBool,
    host: Arc<Contract>,
}

/// A number naming the calling thread, unique for the life of the process (never 0).
fn thread_token() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static TOKEN: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TOKEN.with(|t| *t)
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
///
/// Nothing the commit replaces or consumes (the previous snapshot, the committed
/// transaction's base and draft, a losing transaction) is freed while the lock is held: the
/// guard keeps it and frees it after releasing the lock, so destructors of leaves (Python
/// objects) never run inside the critical section.
pub struct CommitGuard<L: Clone> {
    history: ArcMutexGuard<RawMutex, History>,
    store: Store<L>,
    // Declared after `history`: freed after the lock is released.
    retired: Option<Arc<Snapshot<L>>>,
    more_retired: Vec<Arc<Snapshot<L>>>,
    spent: Option<Transaction<L>>, // the usual single commit: no allocation
    more_spent: Vec<Transaction<L>>,
}

impl<L: Clone> Drop for CommitGuard<L> {
    fn drop(&mut self) {
        // Before the fields: `history` (the lock) is released right after this.
        self.store.0.owner.store(0, Ordering::Release);
    }
}

impl<L: Clone + Send + Sync + 'static> Store<L> {
    /// A store whose version 0 is `root` (namespace → map). Adds the `domain` and `global`
    /// namespaces when absent.
    ///
    /// Errors: [`Error::Type`] for a namespace that is not a map; [`Error::Context`] for an
    /// invalid key anywhere in the tree (spec `01`).
    pub fn new(root: PMap<L>) -> Result<Store<L>> {
        Store::with_version(root, 0)
    }

    /// A store whose first version is `version` holding `root` (restoring from a checkpoint,
    /// spec `15`); otherwise as [`Store::new`].
    pub fn with_version(root: PMap<L>, version: u64) -> Result<Store<L>> {
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
        let snapshot = Snapshot::new(version, root, Vec::new());
        Ok(Store(Arc::new(Shared {
            current: ArcSwap::from_pointee(snapshot),
            commits: Arc::new(Mutex::new(History {
                entries: VecDeque::with_capacity(HISTORY_CAPACITY),
            })),
            owner: AtomicU64::new(0),
            closed: AtomicBool::new(false),
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

    /// Take the commit lock (blocks while another thread is in its critical section).
    ///
    /// The lock knows its owner: if the calling thread already holds it (a signal handler or a
    /// destructor running inside this thread's commit, or an open exclusive transaction of
    /// this thread), this fails at once with [`Error::Nested`] instead of waiting forever.
    pub fn lock_commits(&self) -> Result<CommitGuard<L>> {
        let me = self.check_not_owner()?;
        let history = self.0.commits.lock_arc();
        Ok(self.guard(history, me))
    }

    /// Take the commit lock if it is free: `Ok(None)` if another thread holds it,
    /// [`Error::Nested`] if this thread does (see [`Store::lock_commits`]).
    pub fn try_lock_commits(&self) -> Result<Option<CommitGuard<L>>> {
        let me = self.check_not_owner()?;
        Ok(self
            .0
            .commits
            .try_lock_arc()
            .map(|history| self.guard(history, me)))
    }

    fn check_not_owner(&self) -> Result<u64> {
        let me = thread_token();
        if self.0.owner.load(Ordering::Acquire) == me {
            return Err(Error::Nested {
                detail: "this thread is already inside a commit of this engine or holds an \
                         exclusive transaction on it (a signal handler or destructor re-entered \
                         the engine); nothing was committed"
                    .into(),
            });
        }
        Ok(me)
    }

    fn guard(&self, history: ArcMutexGuard<RawMutex, History>, me: u64) -> CommitGuard<L> {
        self.0.owner.store(me, Ordering::Release);
        CommitGuard {
            history,
            store: self.clone(),
            retired: None,
            more_retired: Vec::new(),
            spent: None,
            more_spent: Vec::new(),
        }
    }

    /// Close the store: wait for a commit in its critical section, then refuse every later
    /// commit with [`Error::Closed`]. Idempotent. [`Error::Nested`] if this thread holds the
    /// commit lock. See [`CommitGuard::close_store`] to close under a guard taken otherwise.
    pub fn close(&self) -> Result<()> {
        if self.is_closed() {
            return Ok(());
        }
        self.lock_commits()?.close_store();
        Ok(())
    }

    /// Whether [`Store::close`] has run.
    pub fn is_closed(&self) -> bool {
        self.0.closed.load(Ordering::Acquire)
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

    /// Mark the store closed (see [`Store::close`]): no commit lands after this guard.
    pub fn close_store(&self) {
        self.store.0.closed.store(true, Ordering::Release);
    }

    /// Keep a consumed transaction until the lock is released (then it is freed).
    pub(crate) fn retire(&mut self, spent: Transaction<L>) {
        if let Some(earlier) = self.spent.replace(spent) {
            self.more_spent.push(earlier);
        }
    }

    /// Make `snapshot` current and remember its write set.
    pub(crate) fn install(&mut self, snapshot: Arc<Snapshot<L>>, writes: Arc<[Path]>) {
        let version = snapshot.version();
        let replaced = self.store.0.current.swap(snapshot);
        if let Some(earlier) = self.retired.replace(replaced) {
            self.more_retired.push(earlier);
        }
        if self.history.entries.len() == HISTORY_CAPACITY {
            self.history.entries.pop_front();
        }
        self.history.entries.push_back((version, writes));
    }
}
