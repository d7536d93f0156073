//! [`Transaction`]: a draft on a base snapshot, with guarded reads (`spec/04`), read and write
//! sets (`spec/05`). Writes live in `write.rs`, commit in `commit.rs`.

use std::fmt;
use std::sync::Arc;

use crate::contract::{Contract, Cursor, Semantic};
use crate::error::{Error, Result};
use crate::map::PMap;
use crate::meta;
use crate::path::{parse_index, segment_error, Path};
use crate::snapshot::Snapshot;
use crate::store::Store;
use crate::tree;
use crate::value::Value;
use crate::zone::{zone_position, zone_step, Zone};

/// One attempt of a process call, or a host transaction: a private draft of the tree on top of
/// a base snapshot. Nothing it does is visible to anyone until [`Transaction::commit`].
///
/// Reads see the transaction's own writes. Every operation checks the contract, the zone
/// rules and the semantic, and records what it read or wrote (spec `05`). A failed operation
/// changes nothing. Dropping the transaction discards it.
pub struct Transaction<L: Clone> {
    pub(crate) store: Store<L>,
    pub(crate) base: Arc<Snapshot<L>>,
    pub(crate) draft: PMap<L>,
    pub(crate) contract: Arc<Contract>,
    pub(crate) strict_guards: bool,
    pub(crate) reads: Vec<Read>,
    pub(crate) writes: Vec<Path>,
    pub(crate) signals: Vec<(Path, L)>,
    /// Lists only appended to, with their length before the first append (spec `15`).
    pub(crate) appends: Vec<(Path, usize)>,
    /// The transaction carries something besides writes (outbox messages): it commits a new
    /// version even if it wrote nothing.
    pub(crate) carries: bool,
    pub(crate) wrote: bool,
    pub(crate) generation: u64,
}

/// One entry of the read set: a parent path and, for a key lookup, the key (stored apart so
/// that recording a read allocates nothing).
pub(crate) struct Read {
    pub(crate) parent: Path,
    pub(crate) key: Option<Arc<str>>,
}

impl Read {
    pub(crate) fn segments(&self) -> impl Iterator<Item = &Arc<str>> {
        self.parent.segments().iter().chain(self.key.as_ref())
    }

    fn to_path(&self) -> Path {
        match &self.key {
            Some(key) => self.parent.child_unchecked(key.clone()),
            None => self.parent.clone(),
        }
    }
}

/// A navigation handle: a container of the draft reached through guarded lookups, with what
/// the contract and the zones say about its path. A guarded view holds one of these.
///
/// The cached container is valid for the draft generation it was taken at; the transaction
/// re-resolves it by path after later writes, so a node always reads the current draft.
#[derive(Clone)]
pub struct Node<L: Clone> {
    path: Path,
    value: Value<L>,
    cursor: Cursor,
    zone: Option<Zone>,
    generation: u64,
}

impl<L: Clone> Node<L> {
    /// The node's path (the empty root path for [`Transaction::root_node`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The container as of the node's generation. Use [`Transaction::observe`] for a recorded
    /// whole-container read, [`Transaction::refresh`] to update the cache.
    pub fn cached_value(&self) -> &Value<L> {
        &self.value
    }

    /// The contract cursor of the path.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// The zone decided so far along the path (`None`: no prefix yet, i.e. data).
    pub fn zone(&self) -> Option<Zone> {
        self.zone
    }

    /// The draft generation the cached container belongs to.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// The result of a guarded lookup.
pub enum Lookup<L: Clone> {
    /// A leaf value (recorded as read), a heavy value, or a signal value from the base.
    Leaf(L),
    /// A map or list: hand out a guarded view of it. Nothing was recorded.
    Node(Node<L>),
}

impl<L: Clone + Send + Sync + 'static> Transaction<L> {
    pub(crate) fn new(
        store: Store<L>,
        base: Arc<Snapshot<L>>,
        contract: Arc<Contract>,
        strict_guards: bool,
    ) -> Self {
        Transaction {
            draft: base.root().clone(),
            store,
            base,
            contract,
            strict_guards,
            reads: Vec::new(),
            writes: Vec::new(),
            signals: Vec::new(),
            appends: Vec::new(),
            carries: false,
            wrote: false,
            generation: 0,
        }
    }

    /// Mark the transaction as carrying something besides its writes (outbox messages), so
    /// that its commit makes a new version even if it wrote nothing (spec `15`).
    pub fn carry(&mut self) {
        self.carries = true;
    }

    /// Whether the commit has anything to land: a write, a signal, or something carried.
    pub fn has_changes(&self) -> bool {
        !self.writes.is_empty() || !self.signals.is_empty() || self.carries
    }

    /// The base snapshot.
    pub fn base(&self) -> &Arc<Snapshot<L>> {
        &self.base
    }

    /// The base version (`ctx.version`, `tx.version`).
    pub fn version(&self) -> u64 {
        self.base.version()
    }

    /// The draft root: the base plus this transaction's writes.
    pub fn draft(&self) -> &PMap<L> {
        &self.draft
    }

    /// The contract (the unrestricted one for host transactions).
    pub fn contract(&self) -> &Arc<Contract> {
        &self.contract
    }

    /// Whether reads outside the contract are refused.
    pub fn strict_guards(&self) -> bool {
        self.strict_guards
    }

    /// Whether anything (a tree write or a signal) was written (spec `14`, `wrote`).
    pub fn wrote(&self) -> bool {
        self.wrote
    }

    /// The read set so far, in read order (may contain duplicates). Built on demand.
    pub fn reads(&self) -> Vec<Path> {
        self.reads.iter().map(Read::to_path).collect()
    }

    /// The number of entries in the read set so far (duplicates included); no allocation.
    pub fn read_count(&self) -> usize {
        self.reads.len()
    }

    /// The write set so far (may contain duplicates; signal writes excluded).
    pub fn writes(&self) -> &[Path] {
        &self.writes
    }

    /// The signals written so far, in write order (a rewrite keeps its first position).
    pub fn signals(&self) -> &[(Path, L)] {
        &self.signals
    }

    /// A counter bumped by every tree write; nodes taken at an older generation re-resolve.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The node above the namespaces, where navigation starts (`ctx`).
    pub fn root_node(&self) -> Node<L> {
        Node {
            path: Path::root(),
            value: Value::Map(self.draft.clone()),
            cursor: self.contract.root_cursor(),
            zone: None,
            generation: self.generation,
        }
    }

    /// Guarded lookup of `key` below `parent` (spec `04`, guarded reads):
    /// 1. covered by `inputs ∪ outputs` → allowed;
    /// 2. else a map or list some pattern leads to → a node (navigation, nothing recorded);
    /// 3. else [`Error::ContractViolation`] (before existence; skipped without strict guards).
    ///
    /// A leaf or a missing key records the path ([`Error::KeyMissing`] for the latter); a
    /// container records nothing. Signal paths read the base snapshot's signals; nothing exists
    /// below a heavy key; a `pure` process may not touch meta paths.
    pub fn child(&mut self, parent: &Node<L>, key: &str) -> Result<Lookup<L>> {
        if let Some(why) = segment_error(key) {
            return Err(Error::InvalidPath {
                path: format!(
                    "{}{}{key}",
                    parent.path,
                    if parent.path.is_root() { "" } else { "." }
                ),
                detail: why.to_owned(),
            });
        }
        let cursor = self.contract.child(parent.cursor, key);
        let zone = zone_step(parent.zone, key);
        let covered = self.contract.covered(cursor);
        if !self
            .contract
            .semantic()
            .may_read(zone.unwrap_or(Zone::Data))
        {
            return Err(self.semantic_read_violation(&parent.path.child_unchecked(key.into())));
        }
        if zone == Some(Zone::Signal) {
            let path = parent.path.child_unchecked(key.into());
            if !covered && self.strict_guards {
                return Err(self.read_violation(&path));
            }
            return match self.signal_value(&path) {
                Some(value) => Ok(Lookup::Leaf(value.clone())),
                None => Err(Error::KeyMissing { path }),
            };
        }
        let fresh;
        let container = if parent.generation == self.generation {
            &parent.value
        } else {
            fresh = self.resolve_for(parent)?;
            &fresh
        };
        let found: Option<(Option<&Arc<str>>, &Value<L>)> = match container {
            _ if parent.zone == Some(Zone::Heavy) => None, // a heavy value is a leaf: nothing below
            Value::Map(m) => m.get_key_value(key).map(|(k, v)| (Some(k), v)),
            Value::List(l) => parse_index(key).and_then(|i| l.get(i)).map(|v| (None, v)),
            Value::Leaf(_) => None,
        };
        let child_key = |stored: Option<&Arc<str>>| stored.cloned().unwrap_or_else(|| key.into());
        let child_path = |stored: Option<&Arc<str>>| parent.path.child_unchecked(child_key(stored));
        if !covered {
            if let Some((k, v)) = found {
                if v.is_container() && self.contract.alive(cursor) {
                    return Ok(Lookup::Node(self.node(
                        child_path(k),
                        v.clone(),
                        cursor,
                        zone,
                    )));
                }
            }
            if self.strict_guards {
                return Err(self.read_violation(&child_path(found.and_then(|(k, _)| k))));
            }
        }
        match found {
            Some((k, Value::Leaf(leaf))) => {
                let leaf = leaf.clone();
                let key = child_key(k);
                // A read repeated in a loop is recorded once (same parent and key objects).
                let repeated = self.reads.last().is_some_and(|last| {
                    last.parent.ptr_eq(&parent.path)
                        && last.key.as_ref().is_some_and(|k| Arc::ptr_eq(k, &key))
                });
                if !repeated {
                    self.reads.push(Read {
                        parent: parent.path.clone(),
                        key: Some(key),
                    });
                }
                Ok(Lookup::Leaf(leaf))
            }
            Some((k, v)) => Ok(Lookup::Node(self.node(
                child_path(k),
                v.clone(),
                cursor,
                zone,
            ))),
            None => {
                let path = child_path(None);
                self.record_read(path.clone());
                Err(Error::KeyMissing { path })
            }
        }
    }

    /// A whole-container read of `node` (`len`, iteration, `in`, `==`, `keys`, `to_dict`, …):
    /// rule 1 of spec `04` applies to the node's path, which is recorded. Returns the current
    /// container.
    pub fn observe(&mut self, node: &Node<L>) -> Result<Value<L>> {
        if !self.contract.covered(node.cursor) && self.strict_guards {
            return Err(self.read_violation(&node.path));
        }
        let value = if node.generation == self.generation {
            node.value.clone()
        } else {
            self.resolve_for(node)?
        };
        self.record_read(node.path.clone());
        Ok(value)
    }

    /// [`Transaction::observe`] as the process may see it: for a `pure` process the meta-zone
    /// keys below a data-zone node are absent (spec `03`) — only the node's own keys when `deep`
    /// is false (`len`, `keys`, `in`, iteration, `items`), at every depth when true (`to_dict`,
    /// `==`, `repr`). Other semantics pay nothing.
    pub fn observe_visible(&mut self, node: &Node<L>, deep: bool) -> Result<Value<L>> {
        let value = self.observe(node)?;
        if self.contract.semantic() != Semantic::Pure || node.zone.is_some() {
            return Ok(value);
        }
        Ok(if deep {
            meta::hide_meta(&value)
        } else {
            meta::hide_meta_keys(&value)
        })
    }

    /// `value`, stored at `path`, as this transaction's process may see it (every meta-zone key
    /// removed for a `pure` process, spec `03`): for a caller that computes on a container it
    /// took with [`Transaction::peek`] (`remove`, `sort`).
    pub fn visible(&self, path: &Path, value: &Value<L>) -> Value<L> {
        if self.contract.semantic() != Semantic::Pure || zone_position(path.segments()).is_some() {
            return value.clone();
        }
        meta::hide_meta(value)
    }

    /// For a `pure` process: [`Error::ContractViolation`] naming the first meta path below the
    /// data-zone value at `path` (`clear()` of a map would delete it). Nothing for others.
    pub fn refuse_meta_below(&self, path: &Path) -> Result<()> {
        if let Some(value) = self.peek(path) {
            self.no_meta(path, Some(value), "clear")?;
        }
        Ok(())
    }

    /// Update a node's cached container to the current draft (after writes). Errors if the
    /// path no longer holds a container.
    pub fn refresh(&self, node: &mut Node<L>) -> Result<()> {
        if node.generation != self.generation {
            node.value = self.resolve_for(node)?;
            node.generation = self.generation;
        }
        Ok(())
    }

    /// Guarded lookup of a whole path, key by key from the root, with the rules of
    /// [`Transaction::child`].
    pub fn read(&mut self, path: &Path) -> Result<Lookup<L>> {
        let mut lookup = Lookup::Node(self.root_node());
        for (i, key) in path.segments().iter().enumerate() {
            lookup = match lookup {
                Lookup::Node(node) => self.child(&node, key)?,
                Lookup::Leaf(_) => {
                    return Err(Error::NotAContainer {
                        path: path.prefix(i),
                        detail: format!(
                            "cannot read '{path}' below a value that is not a map or list"
                        ),
                    })
                }
            };
        }
        Ok(lookup)
    }

    /// A recorded read of the whole value at `path` (`tx.get(path)`): the path must be covered
    /// by `inputs ∪ outputs` (unless guards are lax). `None` if nothing is there. Signal paths
    /// read the base snapshot's signals and are not recorded.
    pub fn get(&mut self, path: &Path) -> Result<Option<Value<L>>> {
        let zone = zone_position(path.segments()).map_or(Zone::Data, |(_, z)| z);
        if !self.contract.semantic().may_read(zone) {
            return Err(self.semantic_read_violation(path));
        }
        let cursor = self.contract.cursor_at(path.segments());
        if !self.contract.covered(cursor) && self.strict_guards {
            return Err(self.read_violation(path));
        }
        if zone == Zone::Signal {
            return Ok(self.signal_value(path).map(|v| Value::Leaf(v.clone())));
        }
        self.record_read(path.clone());
        Ok(tree::lookup(&self.draft, path.segments()).cloned())
    }

    /// The signal at `path` as this transaction sees it: its own latest write, else the base
    /// snapshot's (spec `03`). Not a recorded read.
    pub fn signal_value(&self, path: &Path) -> Option<&L> {
        self.signals
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, v)| v)
            .or_else(|| self.base.signal(path))
    }

    /// The draft's value at `path`, without any check or recording (the caller computes a
    /// whole-list rewrite such as `sort`, after [`Transaction::check_write`]).
    pub fn peek(&self, path: &Path) -> Option<&Value<L>> {
        if path.is_root() {
            return None;
        }
        tree::lookup(&self.draft, path.segments())
    }

    /// A node for the child `key` of `parent` holding `value`, without a contract check or a
    /// recorded read: for the items of a container that was just read as a whole
    /// ([`Transaction::observe`]), whose path is therefore covered.
    pub fn node_below(&self, parent: &Node<L>, key: Arc<str>, value: Value<L>) -> Node<L> {
        let cursor = self.contract.child(parent.cursor, &key);
        let zone = zone_step(parent.zone, &key);
        self.node(parent.path.child_unchecked(key), value, cursor, zone)
    }

    fn record_read(&mut self, path: Path) {
        self.reads.push(Read {
            parent: path,
            key: None,
        });
    }

    fn node(&self, path: Path, value: Value<L>, cursor: Cursor, zone: Option<Zone>) -> Node<L> {
        Node {
            path,
            value,
            cursor,
            zone,
            generation: self.generation,
        }
    }

    /// The current draft container at `path`.
    /// The current container at `node`'s path, of the same kind as the one the node was made
    /// for: a map node whose path now holds a list (or the reverse) no longer exists.
    fn resolve_for(&self, node: &Node<L>) -> Result<Value<L>> {
        let value = self.resolve(&node.path)?;
        if std::mem::discriminant(&value) != std::mem::discriminant(&node.value) {
            return Err(Error::NotAContainer {
                path: node.path.clone(),
                detail: format!(
                    "the value here is now a {}, no longer the {} of this view",
                    value.kind(),
                    node.value.kind()
                ),
            });
        }
        Ok(value)
    }

    fn resolve(&self, path: &Path) -> Result<Value<L>> {
        if path.is_root() {
            return Ok(Value::Map(self.draft.clone()));
        }
        match tree::lookup(&self.draft, path.segments()) {
            Some(v) if v.is_container() => Ok(v.clone()),
            Some(v) => Err(Error::NotAContainer {
                path: path.clone(),
                detail: format!(
                    "the value here is now a {}, no longer a map or list",
                    v.kind()
                ),
            }),
            None => Err(Error::KeyMissing { path: path.clone() }),
        }
    }

    pub(crate) fn read_violation(&self, path: &Path) -> Error {
        let c = &self.contract;
        Error::ContractViolation {
            path: path.clone(),
            detail: format!(
                "process '{}' may not read '{path}': it is not covered by its inputs {} or \
                 outputs {}; declare it in inputs=[...]",
                c.name(),
                c.describe_inputs(),
                c.describe_outputs()
            ),
        }
    }

    fn semantic_read_violation(&self, path: &Path) -> Error {
        Error::ContractViolation {
            path: path.clone(),
            detail: format!(
                "pure process '{}' may not read meta path '{path}'",
                self.contract.name()
            ),
        }
    }
}

impl<L: Clone + Send + Sync + 'static> fmt::Debug for Transaction<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("base_version", &self.base.version())
            .field("contract", &self.contract.name())
            .field("reads", &self.reads.len())
            .field("writes", &self.writes.len())
            .field("signals", &self.signals.len())
            .finish()
    }
}
