//! Compiled contracts: the `inputs`/`outputs` patterns of a process turned into one small
//! deterministic automaton over keys, walked one key at a time while a process navigates.
//!
//! A [`Cursor`] is a state of that automaton (a `u32`, `Copy`, storable in a view). Stepping it
//! with [`Contract::child`] is one hash lookup with no allocation (none at all in the two
//! absorbing states "everything allowed" and "nothing reachable").

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::pattern::{Pattern, PatternSegment};
use crate::zone::Zone;

/// The semantic of a process (`spec/04-processes-and-contracts.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Semantic {
    /// No meta reads or writes, no signal writes.
    Pure,
    /// Anything its contract allows (the default).
    #[default]
    Effect,
    /// May read per contract, may write only signal and meta paths.
    Guide,
}

impl Semantic {
    /// Parse `"pure"`, `"effect"` or `"guide"`.
    pub fn parse(name: &str) -> Option<Semantic> {
        Some(match name {
            "pure" => Semantic::Pure,
            "effect" => Semantic::Effect,
            "guide" => Semantic::Guide,
            _ => return None,
        })
    }

    /// The semantic's name.
    pub fn name(self) -> &'static str {
        match self {
            Semantic::Pure => "pure",
            Semantic::Effect => "effect",
            Semantic::Guide => "guide",
        }
    }

    /// Whether a process of this semantic may read a path of `zone` (its contract permitting).
    pub fn may_read(self, zone: Zone) -> bool {
        !(self == Semantic::Pure && zone == Zone::Meta)
    }

    /// Whether a process of this semantic may write a path of `zone` (its contract permitting).
    pub fn may_write(self, zone: Zone) -> bool {
        match self {
            Semantic::Pure => !matches!(zone, Zone::Meta | Zone::Signal),
            Semantic::Effect => true,
            Semantic::Guide => matches!(zone, Zone::Meta | Zone::Signal),
        }
    }
}

impl fmt::Display for Semantic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A position in a [`Contract`]'s automaton: what the contract says about one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cursor(u32);

type Edges = HashMap<Arc<str>, u32, foldhash::fast::RandomState>;

struct State {
    readable: bool,
    writable: bool,
    alive: bool,
    edges: Edges,
    other: u32,
}

/// A process's contract, compiled: its patterns, its semantic and the automaton answering
/// "covered by inputs ∪ outputs?", "covered by outputs?" and "does some pattern lead here?"
/// for a path reached key by key.
pub struct Contract {
    name: Arc<str>,
    inputs: Vec<Pattern>,
    outputs: Vec<Pattern>,
    semantic: Semantic,
    states: Vec<State>,
    root: u32,
    unrestricted: bool,
}

/// Automaton size beyond which a contract is refused (only pathological `**` mixes get near).
const MAX_STATES: usize = 4096;

impl Contract {
    /// Compile a process contract. `name` is the process's name, used in messages.
    ///
    /// Errors with [`Error::InvalidContract`] for a malformed pattern, or for a pattern the
    /// semantic forbids literally (a `pure` contract naming a meta path or writing a signal
    /// path; a `guide` output outside the signal and meta zones). Whether each pattern's
    /// namespace exists is the engine's check (see [`Pattern::namespace`]).
    pub fn compile<I, O>(name: &str, inputs: I, outputs: O, semantic: Semantic) -> Result<Contract>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
        O: IntoIterator,
        O::Item: AsRef<str>,
    {
        let inputs = parse_all(name, "inputs", inputs)?;
        let outputs = parse_all(name, "outputs", outputs)?;
        check_semantic(name, semantic, &inputs, &outputs)?;
        let (states, root) = build(&inputs, &outputs).ok_or_else(|| Error::InvalidContract {
            pattern: outputs
                .first()
                .or(inputs.first())
                .map_or("", |p| p.as_str())
                .into(),
            detail: format!("the contract of process '{name}' has too many wildcard combinations"),
        })?;
        Ok(Contract {
            name: name.into(),
            inputs,
            outputs,
            semantic,
            states,
            root,
            unrestricted: false,
        })
    }

    /// The contract of a host transaction: every path readable and writable, semantic `effect`.
    /// Zone rules still apply to transactions using it.
    pub fn unrestricted() -> Contract {
        let full = State {
            readable: true,
            writable: true,
            alive: true,
            edges: Edges::default(),
            other: 0,
        };
        Contract {
            name: "<host transaction>".into(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            semantic: Semantic::Effect,
            states: vec![full],
            root: 0,
            unrestricted: true,
        }
    }

    /// The process name given at compile time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The semantic.
    pub fn semantic(&self) -> Semantic {
        self.semantic
    }

    /// The input patterns, in the order given.
    pub fn inputs(&self) -> &[Pattern] {
        &self.inputs
    }

    /// The output patterns, in the order given.
    pub fn outputs(&self) -> &[Pattern] {
        &self.outputs
    }

    /// Whether this is [`Contract::unrestricted`].
    pub fn is_unrestricted(&self) -> bool {
        self.unrestricted
    }

    /// Number of automaton states (for diagnostics and tests).
    pub fn state_count(&self) -> usize {
        self.states.len()
    }

    /// The cursor of the root (the empty path above the namespaces).
    #[inline]
    pub fn root_cursor(&self) -> Cursor {
        Cursor(self.root)
    }

    /// The cursor one key below `cursor`.
    #[inline]
    pub fn child(&self, cursor: Cursor, key: &str) -> Cursor {
        let state = &self.states[cursor.0 as usize];
        if state.edges.is_empty() {
            return Cursor(state.other);
        }
        Cursor(state.edges.get(key).copied().unwrap_or(state.other))
    }

    /// The cursor of a whole path, walked from the root.
    pub fn cursor_at<S: AsRef<str>>(&self, segments: &[S]) -> Cursor {
        segments
            .iter()
            .fold(self.root_cursor(), |c, s| self.child(c, s.as_ref()))
    }

    /// Whether the path at `cursor` is covered by `inputs ∪ outputs` (may be read).
    #[inline]
    pub fn covered(&self, cursor: Cursor) -> bool {
        self.states[cursor.0 as usize].readable
    }

    /// Whether the path at `cursor` is covered by `outputs` (may be written).
    #[inline]
    pub fn writable(&self, cursor: Cursor) -> bool {
        self.states[cursor.0 as usize].writable
    }

    /// Whether some pattern leads to the path at `cursor` (navigation through it is allowed).
    /// Only meaningful when the path is not [`covered`](Contract::covered); it is `true` then.
    #[inline]
    pub fn alive(&self, cursor: Cursor) -> bool {
        self.states[cursor.0 as usize].alive
    }

    /// `['a.b', 'c.*']`-style listing of the inputs, for messages.
    pub fn describe_inputs(&self) -> String {
        describe(&self.inputs)
    }

    /// `['a.b', 'c.*']`-style listing of the outputs, for messages.
    pub fn describe_outputs(&self) -> String {
        describe(&self.outputs)
    }
}

impl fmt::Debug for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contract")
            .field("name", &self.name)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .field("semantic", &self.semantic)
            .field("states", &self.states.len())
            .finish()
    }
}

fn describe(patterns: &[Pattern]) -> String {
    let items: Vec<String> = patterns.iter().map(|p| format!("'{p}'")).collect();
    format!("[{}]", items.join(", "))
}

fn parse_all<I>(name: &str, argument: &str, patterns: I) -> Result<Vec<Pattern>>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    patterns
        .into_iter()
        .map(|text| {
            Pattern::parse(text.as_ref()).map_err(|e| match e {
                Error::InvalidContract { pattern, detail } => Error::InvalidContract {
                    detail: format!("process '{name}', {argument}: {detail}"),
                    pattern,
                },
                other => other,
            })
        })
        .collect()
}

fn check_semantic(
    name: &str,
    semantic: Semantic,
    inputs: &[Pattern],
    outputs: &[Pattern],
) -> Result<()> {
    let refuse = |argument: &str, pattern: &Pattern, why: &str| Error::InvalidContract {
        pattern: pattern.as_str().to_owned(),
        detail: format!("process '{name}', {argument}: a {semantic} process {why}"),
    };
    for (argument, patterns, writing) in [("inputs", inputs, false), ("outputs", outputs, true)] {
        for pattern in patterns {
            let Some(zone) = pattern.fixed_zone() else {
                continue; // decided at access time
            };
            let allowed = semantic.may_read(zone) && (!writing || semantic.may_write(zone));
            if !allowed {
                let why = match (semantic, zone) {
                    (Semantic::Pure, Zone::Meta) => "may not read or write meta paths",
                    (Semantic::Pure, _) => "may not write signals (a signal is an effect)",
                    _ => "may write only signal and meta paths",
                };
                return Err(refuse(argument, pattern, why));
            }
        }
    }
    Ok(())
}

/// A set of pattern positions plus sticky coverage flags: one automaton state, canonical.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    positions: Vec<(u32, u32)>,
    readable: bool,
    writable: bool,
}

struct Nfa<'a> {
    patterns: Vec<(&'a [PatternSegment], bool)>, // (segments, is an output)
}

impl Nfa<'_> {
    fn start(&self) -> Key {
        let positions = (0..self.patterns.len() as u32).map(|p| (p, 0)).collect();
        self.settle(positions, false, false)
    }

    /// Consume one key: `Some(literal)` or `None` for "a key no pattern names".
    fn step(&self, key: &Key, literal: Option<&str>) -> Key {
        let mut next = Vec::with_capacity(key.positions.len());
        for &(p, i) in &key.positions {
            match &self.patterns[p as usize].0[i as usize] {
                PatternSegment::Literal(l) if Some(&**l) == literal => next.push((p, i + 1)),
                PatternSegment::Literal(_) => {}
                PatternSegment::Star => next.push((p, i + 1)),
                PatternSegment::DoubleStar => next.push((p, i)),
            }
        }
        self.settle(next, key.readable, key.writable)
    }

    /// Epsilon closure, coverage detection and canonical form.
    fn settle(
        &self,
        mut positions: Vec<(u32, u32)>,
        mut readable: bool,
        mut writable: bool,
    ) -> Key {
        let mut k = 0;
        while k < positions.len() {
            let (p, i) = positions[k];
            let segments = self.patterns[p as usize].0;
            if (i as usize) < segments.len() && segments[i as usize] == PatternSegment::DoubleStar {
                positions.push((p, i + 1));
            }
            k += 1;
        }
        positions.retain(|&(p, i)| {
            let (segments, output) = self.patterns[p as usize];
            let done = i as usize == segments.len();
            if done {
                readable = true;
                writable |= output;
            }
            !done
        });
        if writable {
            positions.clear(); // everything below is readable and writable
        } else if readable {
            positions.retain(|&(p, _)| self.patterns[p as usize].1); // only write coverage left
        }
        positions.sort_unstable();
        positions.dedup();
        Key {
            positions,
            readable,
            writable,
        }
    }

    fn literals<'k>(&'k self, key: &Key) -> Vec<&'k Arc<str>> {
        let mut out: Vec<&Arc<str>> = Vec::new();
        for &(p, i) in &key.positions {
            if let PatternSegment::Literal(l) = &self.patterns[p as usize].0[i as usize] {
                if !out.iter().any(|o| o == &l) {
                    out.push(l);
                }
            }
        }
        out
    }
}

/// Subset construction; `None` if the automaton would exceed [`MAX_STATES`].
fn build(inputs: &[Pattern], outputs: &[Pattern]) -> Option<(Vec<State>, u32)> {
    let nfa = Nfa {
        patterns: inputs
            .iter()
            .map(|p| (p.segments(), false))
            .chain(outputs.iter().map(|p| (p.segments(), true)))
            .collect(),
    };
    let mut keys: Vec<Key> = Vec::new();
    let mut index: HashMap<Key, u32> = HashMap::new();
    let mut queue = VecDeque::new();
    let mut intern = |key: Key, keys: &mut Vec<Key>, queue: &mut VecDeque<u32>| -> Option<u32> {
        match index.entry(key) {
            Entry::Occupied(e) => Some(*e.get()),
            Entry::Vacant(e) => {
                if keys.len() >= MAX_STATES {
                    return None;
                }
                let id = keys.len() as u32;
                keys.push(e.key().clone());
                queue.push_back(id);
                Some(*e.insert(id))
            }
        }
    };
    let root = intern(nfa.start(), &mut keys, &mut queue)?;
    let mut transitions: Vec<(Edges, u32)> = Vec::new();
    while let Some(id) = queue.pop_front() {
        let key = keys[id as usize].clone();
        let other = intern(nfa.step(&key, None), &mut keys, &mut queue)?;
        let mut edges = Edges::default();
        for literal in nfa.literals(&key) {
            let target = intern(nfa.step(&key, Some(literal)), &mut keys, &mut queue)?;
            if target != other {
                edges.insert(literal.clone(), target);
            }
        }
        if transitions.len() <= id as usize {
            transitions.resize_with(id as usize + 1, || (Edges::default(), 0));
        }
        transitions[id as usize] = (edges, other);
    }
    let states = keys
        .into_iter()
        .zip(transitions)
        .map(|(key, (edges, other))| State {
            readable: key.readable,
            writable: key.writable,
            alive: key.readable || !key.positions.is_empty(),
            edges,
            other,
        })
        .collect();
    Some((states, root))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::Path;

    fn contract(inputs: &[&str], outputs: &[&str]) -> Contract {
        Contract::compile("p", inputs, outputs, Semantic::Effect).unwrap()
    }

    fn at(c: &Contract, path: &str) -> Cursor {
        c.cursor_at(Path::parse(path).unwrap().segments())
    }

    #[test]
    fn literal_contract_is_a_trie() {
        let c = contract(&["domain.a"], &["domain.b.c"]);
        assert!(c.covered(at(&c, "domain.a")));
        assert!(c.covered(at(&c, "domain.a.x.y")));
        assert!(!c.writable(at(&c, "domain.a")));
        assert!(c.writable(at(&c, "domain.b.c.d")));
        assert!(!c.covered(at(&c, "domain.b")));
        assert!(c.alive(at(&c, "domain.b")));
        assert!(!c.alive(at(&c, "domain.z")));
        assert!(!c.alive(at(&c, "global")));
        assert!(c.alive(at(&c, "domain")));
    }

    #[test]
    fn wildcards_agree_with_patterns() {
        let pats = ["domain.*.name", "domain.**.b", "global.x.**", "domain.l.0"];
        let c = contract(&pats, &[]);
        let paths = [
            "domain",
            "domain.a",
            "domain.a.name",
            "domain.a.b",
            "domain.x.y.b.c",
            "global",
            "global.x",
            "global.x.y.z",
            "global.y",
            "domain.l",
            "domain.l.0",
            "domain.l.1",
            "domain.name",
            "domain.b",
        ];
        for path in paths {
            let parsed = Path::parse(path).unwrap();
            let patterns: Vec<Pattern> = pats.iter().map(|p| Pattern::parse(p).unwrap()).collect();
            let covered = patterns.iter().any(|p| p.covers(&parsed));
            let leads = patterns.iter().any(|p| p.leads_to(&parsed));
            let cur = at(&c, path);
            assert_eq!(c.covered(cur), covered, "covered {path}");
            if !covered {
                assert_eq!(c.alive(cur), leads, "alive {path}");
            }
        }
    }

    #[test]
    fn semantic_literal_checks() {
        assert!(Contract::compile("p", ["domain.meta_x"], [""; 0], Semantic::Pure).is_err());
        assert!(Contract::compile("p", [""; 0], ["domain.sig_x"], Semantic::Pure).is_err());
        assert!(Contract::compile("p", ["domain.sig_x"], [""; 0], Semantic::Pure).is_ok());
        assert!(Contract::compile("p", [""; 0], ["domain.x"], Semantic::Guide).is_err());
        assert!(Contract::compile(
            "p",
            [""; 0],
            ["domain.sig_x", "domain.meta_y"],
            Semantic::Guide
        )
        .is_ok());
        assert!(Contract::compile("p", [""; 0], ["domain.*"], Semantic::Guide).is_ok());
        let err = Contract::compile("pay", ["domain.x*"], [""; 0], Semantic::Effect).unwrap_err();
        assert!(err.to_string().contains("process 'pay', inputs"), "{err}");
    }

    #[test]
    fn unrestricted_allows_everything() {
        let c = Contract::unrestricted();
        let cur = at(&c, "domain.anything.at.all");
        assert!(c.covered(cur) && c.writable(cur) && c.alive(cur));
    }
}
