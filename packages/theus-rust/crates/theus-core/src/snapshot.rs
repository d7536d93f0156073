//! [`Snapshot`]: one immutable version of the context tree (`spec/01-state-and-versions.md`).

use std::fmt;

use crate::map::PMap;
use crate::path::Path;
use crate::tree;
use crate::value::Value;

/// One version of the state: the tree (a map of namespaces to maps) and the signals written by
/// the commit that produced it. Never changes once built; shared as `Arc<Snapshot<L>>`.
pub struct Snapshot<L: Clone> {
    version: u64,
    root: PMap<L>,
    signals: Vec<(Path, L)>,
}

impl<L: Clone> Snapshot<L> {
    /// Assemble a snapshot. The store builds them; this is public for tests and tools.
    pub fn new(version: u64, root: PMap<L>, signals: Vec<(Path, L)>) -> Self {
        Snapshot {
            version,
            root,
            signals,
        }
    }

    /// The version: 0 for the initial context, +1 per commit.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The root map (namespace → map).
    pub fn root(&self) -> &PMap<L> {
        &self.root
    }

    /// The namespace `name`, if present.
    pub fn namespace(&self, name: &str) -> Option<&PMap<L>> {
        self.root.get(name)?.as_map()
    }

    /// The value at `path` in the tree, or `None`. Paths below a heavy key address nothing.
    /// Signals are not in the tree: see [`Snapshot::signal`].
    pub fn get(&self, path: &Path) -> Option<&Value<L>> {
        tree::lookup(&self.root, path.segments())
    }

    /// The signals of the commit that produced this snapshot, in write order.
    pub fn signals(&self) -> &[(Path, L)] {
        &self.signals
    }

    /// The signal written at `path` by the commit that produced this snapshot.
    pub fn signal(&self, path: &Path) -> Option<&L> {
        self.signals.iter().find(|(p, _)| p == path).map(|(_, v)| v)
    }
}

impl<L: Clone + fmt::Debug> fmt::Debug for Snapshot<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("version", &self.version)
            .field("root", &self.root)
            .field("signals", &self.signals)
            .finish()
    }
}
