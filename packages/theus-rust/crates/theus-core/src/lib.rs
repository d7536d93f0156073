//! The pure-Rust core of Theus, a versioned transactional state engine for Python agents.
//!
//! Normative semantics: `spec/` at the repository root. This crate knows nothing of Python:
//! leaves of the tree are an opaque type `L` (the PyO3 crate uses a reference-counted Python
//! object).
//!
//! - [`Value`], [`PMap`], [`PList`]: the persistent tree (O(1) clone, O(log n) update,
//!   structural sharing between versions).
//! - [`Path`], [`Pattern`], [`Contract`]: dotted paths, contract patterns, and contracts
//!   compiled into an automaton walked key by key with a [`Cursor`].
//! - [`Zone`], [`zone_of`], [`zone_of_key`]: zones by key prefix.
//! - [`Snapshot`], [`Store`]: versions of the state and the engine's store (current snapshot,
//!   commit lock, history of write sets).
//! - [`Hub`], [`Receiver`]: the broadcast hub of signals (per-receiver `lag`/`block` queues,
//!   topic filters; spec `08`).
//! - [`Transaction`]: guarded reads and writes on a draft, then an optimistic commit.
//!
//! ```
//! use std::sync::Arc;
//! use theus_core::{Contract, Lookup, Path, PMap, Semantic, Store, Value};
//!
//! let store: Store<i64> = Store::new(PMap::new()).unwrap();
//! let mut host = store.begin_host();
//! host.set(&Path::parse("domain.counter").unwrap(), Value::Leaf(1)).unwrap();
//! host.commit(false).unwrap();
//!
//! let contract = Arc::new(
//!     Contract::compile("incr", ["domain.counter"], ["domain.counter"], Semantic::Effect).unwrap(),
//! );
//! let mut tx = store.begin(contract, true);
//! let root = tx.root_node();
//! let Lookup::Node(domain) = tx.child(&root, "domain").unwrap() else { unreachable!() };
//! let Lookup::Leaf(n) = tx.child(&domain, "counter").unwrap() else { unreachable!() };
//! tx.set(&Path::parse("domain.counter").unwrap(), Value::Leaf(n + 1)).unwrap();
//! let committed = tx.commit(false).unwrap();
//! assert_eq!(committed.snapshot().version(), 2);
//! ```

#![warn(missing_docs)]

mod changes;
mod commit;
mod contract;
mod error;
pub mod expr;
mod hub;
mod map;
mod meta;
mod path;
mod path_set;
mod pattern;
mod snapshot;
mod store;
mod transaction;
mod tree;
mod value;
mod write;
mod zone;

pub use changes::Change;
pub use commit::Committed;
pub use contract::{Contract, Cursor, Semantic};
pub use error::{Error, Result};
pub use hub::{
    Garbage, Glob, Hub, Message, Outbox, Policy, Poll, PublishError, Receiver, RecvError,
    TopicFilter, Wait,
};
pub use map::PMap;
pub use path::{is_valid_key, parse_index, segment_error, Path, MAX_DEPTH};
pub use path_set::PathSet;
pub use pattern::{Pattern, PatternSegment};
pub use snapshot::Snapshot;
pub use store::{CommitGuard, Store, HISTORY_CAPACITY};
pub use transaction::{Lookup, Node, Transaction};
pub use value::{PList, Value};
pub use write::WriteOp;
pub use zone::{zone_of, zone_of_key, zone_position, zone_step, Zone};
