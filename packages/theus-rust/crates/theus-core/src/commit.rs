//! Optimistic commit of a [`Transaction`] (`spec/05-transactions-and-conflicts.md`).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::path::Path;
use crate::path_set::PathSet;
use crate::snapshot::Snapshot;
use crate::store::{CommitGuard, HISTORY_CAPACITY};
use crate::transaction::Transaction;
use crate::tree;

/// The outcome of a successful commit.
pub struct Committed<L: Clone> {
    snapshot: Arc<Snapshot<L>>,
    new_version: bool,
}

impl<L: Clone> Committed<L> {
    /// The new snapshot, or the current one if the transaction wrote nothing.
    pub fn snapshot(&self) -> &Arc<Snapshot<L>> {
        &self.snapshot
    }

    /// Take the snapshot.
    pub fn into_snapshot(self) -> Arc<Snapshot<L>> {
        self.snapshot
    }

    /// Whether a new version was produced (`false` for a transaction that wrote nothing).
    pub fn is_new_version(&self) -> bool {
        self.new_version
    }

    /// The signals to publish, in write order: those of the new snapshot, or none.
    pub fn signals(&self) -> &[(Path, L)] {
        if self.new_version {
            self.snapshot.signals()
        } else {
            &[]
        }
    }
}

impl<L: Clone + Send + Sync + 'static> Transaction<L> {
    /// Commit, taking and releasing the commit lock. `strict = true` is compare-and-swap: any
    /// commit since the base is a conflict. See [`Transaction::commit_locked`].
    pub fn commit(self, strict: bool) -> Result<Committed<L>> {
        let store = self.store.clone();
        let mut guard = store.lock_commits()?;
        self.commit_locked(&mut guard, strict)
    }

    /// Commit, then call `publish` while still holding the commit lock, so that signals reach
    /// subscribers in commit order. `publish` must be quick and must not commit on this store.
    pub fn commit_with<F>(self, strict: bool, publish: F) -> Result<Committed<L>>
    where
        F: FnOnce(&Committed<L>),
    {
        let store = self.store.clone();
        let mut guard = store.lock_commits()?;
        let committed = self.commit_locked(&mut guard, strict)?;
        publish(&committed);
        Ok(committed)
    }

    /// Commit under a lock the caller holds (spec `05`):
    /// - `strict` → any commit since the base is an [`Error::Conflict`] (even with nothing
    ///   written: a compare-and-swap of an empty update still checks the version);
    /// - nothing written (no tree write, no signal) → no new version; the current snapshot;
    /// - no commit since the base → the draft becomes the new snapshot (pointer swap);
    /// - else a conflict if a path written since the base overlaps this transaction's read or
    ///   write set (or the history no longer covers the base); otherwise this transaction's
    ///   minimal written paths are carried from the draft onto the latest root.
    ///
    /// The new snapshot carries this transaction's signals (and only it does). A closed store
    /// refuses every commit with [`Error::Closed`].
    ///
    /// The transaction (its base, its draft, its values) is handed to `guard`, which frees it
    /// after releasing the lock, whatever the outcome.
    ///
    /// # Panics
    /// If `guard` belongs to another store.
    pub fn commit_locked(
        mut self,
        guard: &mut CommitGuard<L>,
        strict: bool,
    ) -> Result<Committed<L>> {
        assert!(
            guard.store().same_as(&self.store),
            "commit_locked: the commit guard belongs to another store"
        );
        let result = self.commit_in_place(guard, strict);
        guard.retire(self);
        result
    }

    fn commit_in_place(
        &mut self,
        guard: &mut CommitGuard<L>,
        strict: bool,
    ) -> Result<Committed<L>> {
        if guard.store().is_closed() {
            return Err(Error::Closed);
        }
        let latest = guard.current();
        let base = self.base.version();
        if strict && latest.version() != base {
            return Err(Error::Conflict {
                path: None,
                detail: format!(
                    "compare_and_swap expected version {base}, but the state is at version {} \
                     (compare_and_swap never merges: to apply a change to the current version, \
                     use engine.transaction())",
                    latest.version()
                ),
            });
        }
        if !self.has_changes() {
            return Ok(Committed {
                snapshot: latest,
                new_version: false,
            });
        }
        let written = minimal(&self.writes);
        let root = if latest.version() == base {
            self.draft.clone()
        } else {
            self.check_conflicts(guard, latest.version())?;
            let mut root = latest.root().clone();
            for path in written.iter() {
                tree::transplant(&mut root, path, tree::lookup(&self.draft, path.segments()))?;
            }
            root
        };
        let signals = std::mem::take(&mut self.signals);
        let snapshot = Arc::new(Snapshot::new(latest.version() + 1, root, signals));
        guard.install(Arc::clone(&snapshot), written);
        Ok(Committed {
            snapshot,
            new_version: true,
        })
    }

    fn check_conflicts(&self, guard: &CommitGuard<L>, latest: u64) -> Result<()> {
        let base = self.base.version();
        let Some(commits) = guard.history().since(base, latest) else {
            return Err(Error::Conflict {
                path: None,
                detail: format!(
                    "the transaction's base version {base} is more than {HISTORY_CAPACITY} \
                     commits behind the current version {latest}"
                ),
            });
        };
        let mut touched = PathSet::new();
        for read in &self.reads {
            touched.insert_segments(read.segments());
        }
        for path in &self.writes {
            touched.insert(path);
        }
        for (version, paths) in commits {
            if let Some(path) = paths.iter().find(|p| touched.overlaps(p)) {
                return Err(Error::Conflict {
                    path: Some(path.clone()),
                    detail: format!(
                        "'{path}' was written by version {version}, after this transaction's \
                         base version {base}, overlapping a path this transaction read or wrote"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The written paths without those below another written path.
pub(crate) fn minimal(writes: &[Path]) -> Arc<[Path]> {
    match writes {
        [] => Arc::from(Vec::new()),
        [one] => Arc::from(vec![one.clone()]),
        many => {
            let mut set = PathSet::new();
            for path in many {
                set.insert(path);
            }
            set.minimal().into()
        }
    }
}
