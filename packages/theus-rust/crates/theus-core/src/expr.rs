//! Flux condition expressions evaluated natively (`spec/18-flux.md` §2.6).
//!
//! [`Expr`] is the canonical tree (the IR) of a checked, constant-folded expression; [`eval`]
//! evaluates it against one [`Snapshot`] with Python's semantics for `None`, `bool`, `int`
//! (as `i64`), `float` and `str`. Leaves are opaque to the core: a [`View`] says which scalar a
//! leaf is, without converting anything. Whatever this evaluator does not model exactly (an
//! `i64` overflow, an operand it does not know, a missing key, a Python error of any kind) is
//! [`Unsupported`]: the caller then evaluates the same expression in Python on the same
//! snapshot, which yields the value or the error text. So a native result, when there is one,
//! is always the Python result.
//!
//! The tree is at most [`MAX_EXPR_DEPTH`] levels deep (checked by [`Expr::depth`], iteratively);
//! [`eval`] recurses with an explicit depth guard as well.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::map::PMap;
use crate::path::Path;
use crate::snapshot::Snapshot;
use crate::value::{PList, Value};

/// The deepest tree [`eval`] evaluates (the language caps expressions at 32 levels).
pub const MAX_EXPR_DEPTH: usize = 48;

/// Repetition bound of spec/18 §2.4 (`'a' * n`).
const MAX_REPEAT_LEN: i64 = 10_000;

/// The evaluation cannot be done natively (or fails): evaluate in Python instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported;

type R<T> = Result<T, Unsupported>;

/// A literal of the IR.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// `None`
    None,
    /// `True` / `False`
    Bool(bool),
    /// an `int` that fits in 64 bits
    Int(i64),
    /// a `float`
    Float(f64),
    /// a `str`
    Str(Box<str>),
    /// a tuple of literals
    Tuple(Vec<Lit>),
}

/// A constant key of a `read`.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    /// a map key
    Str(Box<str>),
    /// a list index
    Int(i64),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in`
    In,
    /// `not in`
    NotIn,
    /// `is` (right operand `None`, `True` or `False`)
    Is,
    /// `is not`
    IsNot,
}

impl CmpOp {
    /// The operator spelled as in the IR.
    pub fn parse(text: &str) -> Option<CmpOp> {
        Some(match text {
            "==" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            "in" => CmpOp::In,
            "not in" => CmpOp::NotIn,
            "is" => CmpOp::Is,
            "is not" => CmpOp::IsNot,
            _ => return None,
        })
    }
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `//`
    FloorDiv,
    /// `%`
    Mod,
    /// `**`
    Pow,
}

impl BinOp {
    /// The operator spelled as in the IR.
    pub fn parse(text: &str) -> Option<BinOp> {
        Some(match text {
            "+" => BinOp::Add,
            "-" => BinOp::Sub,
            "*" => BinOp::Mul,
            "/" => BinOp::Div,
            "//" => BinOp::FloorDiv,
            "%" => BinOp::Mod,
            "**" => BinOp::Pow,
            _ => return None,
        })
    }
}

/// A function of spec/18 §2.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `len(x)`
    Len,
    /// `min(...)`
    Min,
    /// `max(...)`
    Max,
    /// `abs(x)`
    Abs,
    /// `int(x)`
    Int,
    /// `float(x)`
    Float,
    /// `str(x)`
    Str,
    /// `bool(x)`
    Bool,
}

impl Func {
    /// The function by name.
    pub fn parse(text: &str) -> Option<Func> {
        Some(match text {
            "len" => Func::Len,
            "min" => Func::Min,
            "max" => Func::Max,
            "abs" => Func::Abs,
            "int" => Func::Int,
            "float" => Func::Float,
            "str" => Func::Str,
            "bool" => Func::Bool,
            _ => return None,
        })
    }
}

/// A node of the canonical tree (spec/18 §2.6).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `("const", v)`
    Const(Lit),
    /// `("read", root, (keys...))`: a root name, then constant keys
    Read(Box<str>, Vec<Key>),
    /// `("index", base, key)`: `base[key]` with a computed base or key
    Index(Box<Expr>, Box<Expr>),
    /// `("get", base, key, default)`: `base.get(key, default)`
    Get(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `("cmp", (ops...), (operands...))`: a (chained) comparison
    Cmp(Vec<CmpOp>, Vec<Expr>),
    /// `("and", (operands...))`
    And(Vec<Expr>),
    /// `("or", (operands...))`
    Or(Vec<Expr>),
    /// `("not", x)`
    Not(Box<Expr>),
    /// `("neg", x)`
    Neg(Box<Expr>),
    /// `("pos", x)`
    Pos(Box<Expr>),
    /// `("bin", op, a, b)`
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// `("if", test, body, orelse)`
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `("call", name, (args...))`
    Call(Func, Vec<Expr>),
    /// `("tuple", (items...))`
    Tuple(Vec<Expr>),
}

impl Expr {
    fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Const(_) | Expr::Read(..) => Vec::new(),
            Expr::Index(a, b) | Expr::Bin(_, a, b) => vec![a, b],
            Expr::Get(a, b, c) | Expr::If(a, b, c) => vec![a, b, c],
            Expr::Not(a) | Expr::Neg(a) | Expr::Pos(a) => vec![a],
            Expr::Cmp(_, xs)
            | Expr::And(xs)
            | Expr::Or(xs)
            | Expr::Call(_, xs)
            | Expr::Tuple(xs) => xs.iter().collect(),
        }
    }

    /// The number of levels of the tree (a leaf node is 1), computed iteratively.
    pub fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(self, 1usize)];
        while let Some((node, depth)) = stack.pop() {
            deepest = deepest.max(depth);
            for child in node.children() {
                stack.push((child, depth + 1));
            }
        }
        deepest
    }

    /// The root names this tree reads (in first-use order, without repeats).
    pub fn roots(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            if let Expr::Read(root, _) = node {
                if !out.contains(&&**root) {
                    out.push(root);
                }
            }
            stack.extend(node.children().into_iter().rev());
        }
        out
    }
}

/// What a leaf is, as far as the evaluator is concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    /// `None`
    None,
    /// exactly a `bool`
    Bool(bool),
    /// exactly an `int` that fits in 64 bits
    Int(i64),
    /// exactly a `float`
    Float(f64),
    /// exactly a `str` (valid Unicode)
    Str(&'a str),
    /// anything else (evaluated in Python when it matters)
    Other,
}

/// Tells the evaluator what a leaf is.
pub trait View<L> {
    /// The scalar reading of `leaf` ([`Scalar::Other`] when it is none of the modelled types).
    fn scalar<'a>(&'a self, leaf: &'a L) -> Scalar<'a>;
}

/// A value during evaluation.
#[derive(Debug)]
pub enum Val<'a, L: Clone> {
    /// `None`
    None,
    /// a `bool`
    Bool(bool),
    /// an `int`
    Int(i64),
    /// a `float`
    Float(f64),
    /// a `str`
    Str(Cow<'a, str>),
    /// a literal tuple of the tree
    LitTuple(&'a [Lit]),
    /// a tuple built during evaluation
    Tuple(Vec<Val<'a, L>>),
    /// a map of the state
    Map(&'a PMap<L>),
    /// a list of the state
    List(&'a PList<L>),
    /// the `signal` root: this version's signals by full path and by bare key
    Signals,
    /// a leaf the view does not model
    Opaque(&'a L),
}

/// What an evaluation reads: the snapshot, the inputs and the view of leaves.
pub struct Env<'a, L: Clone, V: View<L>> {
    /// the snapshot (namespaces and signals)
    pub snapshot: &'a Snapshot<L>,
    /// workflow inputs by name (they shadow namespaces)
    pub inputs: &'a [(&'a str, L)],
    /// the view of leaves
    pub view: &'a V,
}

impl<'a, L: Clone, V: View<L>> Env<'a, L, V> {
    fn leaf(&self, leaf: &'a L) -> Val<'a, L> {
        match self.view.scalar(leaf) {
            Scalar::None => Val::None,
            Scalar::Bool(b) => Val::Bool(b),
            Scalar::Int(i) => Val::Int(i),
            Scalar::Float(f) => Val::Float(f),
            Scalar::Str(s) => Val::Str(Cow::Borrowed(s)),
            Scalar::Other => Val::Opaque(leaf),
        }
    }

    fn value(&self, value: &'a Value<L>) -> Val<'a, L> {
        match value {
            Value::Leaf(l) => self.leaf(l),
            Value::Map(m) => Val::Map(m),
            Value::List(l) => Val::List(l),
        }
    }

    fn root(&self, name: &str) -> R<Val<'a, L>> {
        if let Some((_, leaf)) = self.inputs.iter().find(|(n, _)| *n == name) {
            return Ok(self.leaf(leaf));
        }
        if name == "signal" || name == "cmd" {
            return Ok(Val::Signals);
        }
        self.snapshot
            .root()
            .get(name)
            .map(|v| self.value(v))
            .ok_or(Unsupported)
    }

    fn signal(&self, key: &str) -> Option<Val<'a, L>> {
        signal_lookup(self.snapshot.signals(), key).map(|l| self.leaf(l))
    }
}

fn path_is(path: &Path, text: &str) -> bool {
    let mut parts = text.split('.');
    for seg in path.segments() {
        if parts.next() != Some(&**seg) {
            return false;
        }
    }
    parts.next().is_none()
}

/// The signal read by `key` in the `signal` root (spec/18 §2.2): the last signal (in
/// `snapshot.signals` order) whose full path or bare key is `key`.
pub fn signal_lookup<'a, L>(signals: &'a [(Path, L)], key: &str) -> Option<&'a L> {
    signals
        .iter()
        .rev()
        .find(|(p, _)| p.last().is_some_and(|k| &**k == key) || path_is(p, key))
        .map(|(_, v)| v)
}

fn signal_key_count<L>(signals: &[(Path, L)]) -> usize {
    let mut keys: Vec<String> = Vec::new();
    for (p, _) in signals {
        for k in [
            p.to_string(),
            p.last().map(|k| k.to_string()).unwrap_or_default(),
        ] {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    keys.len()
}

// ------------------------------------------------------------------------------------------
// helpers on values

fn lit<L: Clone>(l: &Lit) -> Val<'_, L> {
    match l {
        Lit::None => Val::None,
        Lit::Bool(b) => Val::Bool(*b),
        Lit::Int(i) => Val::Int(*i),
        Lit::Float(f) => Val::Float(*f),
        Lit::Str(s) => Val::Str(Cow::Borrowed(s)),
        Lit::Tuple(items) => Val::LitTuple(items),
    }
}

impl<L: Clone> Clone for Val<'_, L> {
    fn clone(&self) -> Self {
        match self {
            Val::None => Val::None,
            Val::Bool(b) => Val::Bool(*b),
            Val::Int(i) => Val::Int(*i),
            Val::Float(f) => Val::Float(*f),
            Val::Str(s) => Val::Str(s.clone()),
            Val::LitTuple(t) => Val::LitTuple(t),
            Val::Tuple(t) => Val::Tuple(t.clone()),
            Val::Map(m) => Val::Map(m),
            Val::List(l) => Val::List(l),
            Val::Signals => Val::Signals,
            Val::Opaque(o) => Val::Opaque(o),
        }
    }
}

/// A number: `bool` and `int` as `Int`, `float` as `Float`.
#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

fn num<L: Clone>(v: &Val<'_, L>) -> Option<Num> {
    match v {
        Val::Bool(b) => Some(Num::Int(i64::from(*b))),
        Val::Int(i) => Some(Num::Int(*i)),
        Val::Float(f) => Some(Num::Float(*f)),
        _ => None,
    }
}

fn as_float(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    }
}

/// Exact comparison of an int with a float, as Python does (no rounding of the int).
fn cmp_int_float(i: i64, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    if f >= 1e19 {
        return Some(Ordering::Less);
    }
    if f <= -1e19 {
        return Some(Ordering::Greater);
    }
    let t = f.trunc();
    let ti = t as i128;
    match i128::from(i).cmp(&ti) {
        Ordering::Equal => {
            let frac = f - t;
            Some(if frac > 0.0 {
                Ordering::Less
            } else if frac < 0.0 {
                Ordering::Greater
            } else {
                Ordering::Equal
            })
        }
        other => Some(other),
    }
}

fn cmp_num(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y),
        (Num::Int(x), Num::Float(y)) => cmp_int_float(x, y),
        (Num::Float(x), Num::Int(y)) => cmp_int_float(y, x).map(Ordering::reverse),
    }
}

fn tuple_len<L: Clone>(v: &Val<'_, L>) -> Option<usize> {
    match v {
        Val::LitTuple(t) => Some(t.len()),
        Val::Tuple(t) => Some(t.len()),
        _ => None,
    }
}

fn tuple_item<'a, L: Clone>(v: &Val<'a, L>, i: usize) -> Val<'a, L> {
    match v {
        Val::LitTuple(t) => lit(&t[i]),
        Val::Tuple(t) => t[i].clone(),
        _ => Val::None, // never reached: callers check `tuple_len` first
    }
}

fn is_nan<L: Clone>(v: &Val<'_, L>) -> bool {
    matches!(v, Val::Float(f) if f.is_nan())
}

/// `a == b` (Python semantics). Containers of the state and opaque leaves are unsupported.
fn eq<L: Clone>(a: &Val<'_, L>, b: &Val<'_, L>) -> R<bool> {
    if let (Some(x), Some(y)) = (num(a), num(b)) {
        return Ok(cmp_num(x, y) == Some(Ordering::Equal));
    }
    match (a, b) {
        (Val::Map(_) | Val::List(_) | Val::Signals | Val::Opaque(_), _)
        | (_, Val::Map(_) | Val::List(_) | Val::Signals | Val::Opaque(_)) => Err(Unsupported),
        (Val::Str(x), Val::Str(y)) => Ok(x == y),
        (Val::None, Val::None) => Ok(true),
        _ => match (tuple_len(a), tuple_len(b)) {
            (Some(n), Some(m)) => {
                if n != m {
                    return Ok(false);
                }
                for i in 0..n {
                    let (x, y) = (tuple_item(a, i), tuple_item(b, i));
                    // tuple equality compares items with an identity shortcut: NaN is unsure
                    if is_nan(&x) || is_nan(&y) {
                        return Err(Unsupported);
                    }
                    if !eq(&x, &y)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            _ => Ok(false), // different known types
        },
    }
}

/// `a < b` and friends: numbers with numbers, strings with strings; anything else raises in
/// Python (or is not modelled).
fn order<L: Clone>(a: &Val<'_, L>, b: &Val<'_, L>) -> R<Option<Ordering>> {
    if let (Some(x), Some(y)) = (num(a), num(b)) {
        return Ok(cmp_num(x, y));
    }
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => Ok(Some(x.as_bytes().cmp(y.as_bytes()))),
        _ => Err(Unsupported),
    }
}

fn is_plain_scalar<L: Clone>(v: &Val<'_, L>) -> bool {
    matches!(
        v,
        Val::None | Val::Bool(_) | Val::Int(_) | Val::Float(_) | Val::Str(_)
    )
}

fn hashable_known<L: Clone>(v: &Val<'_, L>) -> bool {
    match v {
        Val::LitTuple(_) => true,
        Val::Tuple(items) => items.iter().all(hashable_known),
        other => is_plain_scalar(other),
    }
}

/// `needle in container`.
fn contains<'a, L: Clone, V: View<L>>(
    env: &Env<'a, L, V>,
    needle: &Val<'a, L>,
    container: &Val<'a, L>,
) -> R<bool> {
    match container {
        Val::Str(hay) => match needle {
            Val::Str(n) => Ok(hay.contains(&**n)),
            _ => Err(Unsupported),
        },
        Val::LitTuple(_) | Val::Tuple(_) => {
            if is_nan(needle) {
                return Err(Unsupported);
            }
            let n = tuple_len(container).unwrap_or(0);
            for i in 0..n {
                let item = tuple_item(container, i);
                if is_nan(&item) {
                    return Err(Unsupported);
                }
                if eq(&item, needle)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Val::List(items) => {
            if is_nan(needle) || !(is_plain_scalar(needle) || tuple_len(needle).is_some()) {
                return Err(Unsupported);
            }
            for item in items.iter() {
                let item = env.value(item);
                match item {
                    // a thawed dict or list never equals a scalar or a tuple
                    Val::Map(_) | Val::List(_) => continue,
                    _ => {
                        if is_nan(&item) {
                            return Err(Unsupported);
                        }
                        if eq(&item, needle)? {
                            return Ok(true);
                        }
                    }
                }
            }
            Ok(false)
        }
        Val::Map(m) => match needle {
            Val::Str(k) => Ok(m.contains_key(k)),
            Val::Opaque(_) => Err(Unsupported),
            // a read-only map view holds only str keys and never hashes the needle
            _ => Ok(false),
        },
        Val::Signals => match needle {
            Val::Str(k) => Ok(signal_lookup(env.snapshot.signals(), k).is_some()),
            other if hashable_known(other) => Ok(false),
            _ => Err(Unsupported),
        },
        _ => Err(Unsupported),
    }
}

/// Python truthiness.
pub fn truthy<L: Clone, V: View<L>>(env: &Env<'_, L, V>, v: &Val<'_, L>) -> R<bool> {
    Ok(match v {
        Val::None => false,
        Val::Bool(b) => *b,
        Val::Int(i) => *i != 0,
        Val::Float(f) => *f != 0.0,
        Val::Str(s) => !s.is_empty(),
        Val::LitTuple(t) => !t.is_empty(),
        Val::Tuple(t) => !t.is_empty(),
        Val::Map(m) => !m.is_empty(),
        Val::List(l) => !l.is_empty(),
        Val::Signals => !env.snapshot.signals().is_empty(),
        Val::Opaque(_) => return Err(Unsupported),
    })
}

/// `value[key]` (maps by str key, lists, tuples and strings by int index, negative from the
/// end).
fn index<'a, L: Clone, V: View<L>>(
    env: &Env<'a, L, V>,
    base: Val<'a, L>,
    key: &Val<'_, L>,
) -> R<Val<'a, L>> {
    let position = |len: usize| -> R<usize> {
        let Val::Int(i) = key else {
            return Err(Unsupported);
        };
        let i = if *i < 0 { *i + len as i64 } else { *i };
        if i < 0 || i >= len as i64 {
            return Err(Unsupported);
        }
        Ok(i as usize)
    };
    match (&base, key) {
        (Val::Map(m), Val::Str(k)) => m.get(k).map(|v| env.value(v)).ok_or(Unsupported),
        (Val::Signals, Val::Str(k)) => env.signal(k).ok_or(Unsupported),
        (Val::List(l), Val::Int(_)) => {
            let i = position(l.len())?;
            Ok(env.value(l.get(i).ok_or(Unsupported)?))
        }
        (Val::LitTuple(_) | Val::Tuple(_), Val::Int(_)) => {
            let i = position(tuple_len(&base).unwrap_or(0))?;
            Ok(tuple_item(&base, i))
        }
        (Val::Str(s), Val::Int(_)) => {
            let i = position(s.chars().count())?;
            let c = s.chars().nth(i).ok_or(Unsupported)?;
            Ok(Val::Str(Cow::Owned(c.to_string())))
        }
        _ => Err(Unsupported),
    }
}

fn key_val<L: Clone>(k: &Key) -> Val<'_, L> {
    match k {
        Key::Str(s) => Val::Str(Cow::Borrowed(s)),
        Key::Int(i) => Val::Int(*i),
    }
}

// ------------------------------------------------------------------------------------------
// arithmetic

fn float_divmod(vx: f64, wx: f64) -> (f64, f64) {
    // CPython's _float_div_mod (wx != 0)
    let mut m = vx % wx;
    let mut div = (vx - m) / wx;
    if m != 0.0 {
        if (wx < 0.0) != (m < 0.0) {
            m += wx;
            div -= 1.0;
        }
    } else {
        m = 0.0f64.copysign(wx);
    }
    let floordiv = if div != 0.0 {
        let mut f = div.floor();
        if div - f > 0.5 {
            f += 1.0;
        }
        f
    } else {
        0.0f64.copysign(vx / wx)
    };
    (floordiv, m)
}

const EXACT: i64 = 1 << 53;

fn repeat<'a, L: Clone>(seq: &Val<'a, L>, n: i64) -> R<Val<'a, L>> {
    match seq {
        Val::Str(s) => {
            let len = s.chars().count() as i64;
            if n > 0 && len.saturating_mul(n) > MAX_REPEAT_LEN {
                return Err(Unsupported);
            }
            Ok(Val::Str(Cow::Owned(if n > 0 {
                s.repeat(n as usize)
            } else {
                String::new()
            })))
        }
        Val::LitTuple(_) | Val::Tuple(_) => {
            let len = tuple_len(seq).unwrap_or(0) as i64;
            if n > 0 && len.saturating_mul(n) > MAX_REPEAT_LEN {
                return Err(Unsupported);
            }
            let mut out = Vec::new();
            for _ in 0..n.max(0) {
                for i in 0..len as usize {
                    out.push(tuple_item(seq, i));
                }
            }
            Ok(Val::Tuple(out))
        }
        _ => Err(Unsupported),
    }
}

fn binop<'a, L: Clone>(op: BinOp, a: Val<'a, L>, b: Val<'a, L>) -> R<Val<'a, L>> {
    if let (Some(x), Some(y)) = (num(&a), num(&b)) {
        return arith(op, x, y);
    }
    match op {
        BinOp::Add => match (a, b) {
            (Val::Str(x), Val::Str(y)) => Ok(Val::Str(Cow::Owned(format!("{x}{y}")))),
            (x, y) if tuple_len(&x).is_some() && tuple_len(&y).is_some() => {
                let mut out = Vec::new();
                for t in [&x, &y] {
                    for i in 0..tuple_len(t).unwrap_or(0) {
                        out.push(tuple_item(t, i));
                    }
                }
                Ok(Val::Tuple(out))
            }
            _ => Err(Unsupported),
        },
        BinOp::Mul => match (&a, &b) {
            (seq @ (Val::Str(_) | Val::LitTuple(_) | Val::Tuple(_)), n)
            | (n, seq @ (Val::Str(_) | Val::LitTuple(_) | Val::Tuple(_))) => match n {
                Val::Int(k) => repeat(seq, *k),
                Val::Bool(k) => repeat(seq, i64::from(*k)),
                _ => Err(Unsupported),
            },
            _ => Err(Unsupported),
        },
        _ => Err(Unsupported),
    }
}

fn arith<'a, L: Clone>(op: BinOp, x: Num, y: Num) -> R<Val<'a, L>> {
    let int = |r: Option<i64>| r.map(Val::Int).ok_or(Unsupported);
    if let (Num::Int(a), Num::Int(b)) = (x, y) {
        return match op {
            BinOp::Add => int(a.checked_add(b)),
            BinOp::Sub => int(a.checked_sub(b)),
            BinOp::Mul => int(a.checked_mul(b)),
            BinOp::Div => {
                if b == 0 || !(-EXACT..=EXACT).contains(&a) || !(-EXACT..=EXACT).contains(&b) {
                    return Err(Unsupported);
                }
                Ok(Val::Float(a as f64 / b as f64))
            }
            BinOp::FloorDiv => {
                let q = a.checked_div(b).ok_or(Unsupported)?;
                let r = a.checked_rem(b).ok_or(Unsupported)?;
                Ok(Val::Int(if r != 0 && ((r < 0) != (b < 0)) {
                    q - 1
                } else {
                    q
                }))
            }
            BinOp::Mod => {
                let r = a.checked_rem(b).ok_or(Unsupported)?;
                Ok(Val::Int(if r != 0 && ((r < 0) != (b < 0)) {
                    r + b
                } else {
                    r
                }))
            }
            BinOp::Pow => {
                if b < 0 {
                    return Err(Unsupported);
                }
                let e = u32::try_from(b).map_err(|_| Unsupported)?;
                int(a.checked_pow(e))
            }
        };
    }
    let (a, b) = (as_float(x), as_float(y));
    Ok(Val::Float(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => {
            if b == 0.0 {
                return Err(Unsupported);
            }
            a / b
        }
        BinOp::FloorDiv | BinOp::Mod => {
            if b == 0.0 {
                return Err(Unsupported);
            }
            let (q, m) = float_divmod(a, b);
            if op == BinOp::FloorDiv {
                q
            } else {
                m
            }
        }
        BinOp::Pow => {
            // only the plain case: positive finite base, finite exponent, finite result
            if !(a.is_finite() && b.is_finite() && a > 0.0) {
                return Err(Unsupported);
            }
            let r = a.powf(b);
            if !r.is_finite() {
                return Err(Unsupported);
            }
            r
        }
    }))
}

// ------------------------------------------------------------------------------------------
// functions

fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    let digits = |t: &str| t.bytes().all(|c| c.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty()) || !digits(int_part) || !digits(frac_part) {
        return None;
    }
    if let Some(e) = exponent {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if e.is_empty() || !digits(e) {
            return None;
        }
    }
    s.parse().ok()
}

/// `str(f)` when Python's `repr` is certain without a float formatter: integral values below
/// 1e16.
fn float_text(f: f64) -> Option<String> {
    if !f.is_finite() || f.fract() != 0.0 || f.abs() >= 1e16 {
        return None;
    }
    if f == 0.0 && f.is_sign_negative() {
        return Some("-0.0".into());
    }
    Some(format!("{}.0", f as i64))
}

fn items_of<'a, L: Clone, V: View<L>>(env: &Env<'a, L, V>, v: &Val<'a, L>) -> R<Vec<Val<'a, L>>> {
    Ok(match v {
        Val::Str(s) => s
            .chars()
            .map(|c| Val::Str(Cow::Owned(c.to_string())))
            .collect(),
        Val::LitTuple(_) | Val::Tuple(_) => (0..tuple_len(v).unwrap_or(0))
            .map(|i| tuple_item(v, i))
            .collect(),
        Val::List(l) => l.iter().map(|x| env.value(x)).collect(),
        Val::Map(m) => m.keys().map(|k| Val::Str(Cow::Borrowed(&**k))).collect(),
        _ => return Err(Unsupported),
    })
}

fn call<'a, L: Clone, V: View<L>>(
    env: &Env<'a, L, V>,
    f: Func,
    mut args: Vec<Val<'a, L>>,
) -> R<Val<'a, L>> {
    if matches!(f, Func::Min | Func::Max) {
        let items = if args.len() == 1 {
            items_of(env, &args[0])?
        } else {
            args
        };
        let mut it = items.into_iter();
        let mut best = it.next().ok_or(Unsupported)?;
        let want = if f == Func::Min {
            Ordering::Less
        } else {
            Ordering::Greater
        };
        for item in it {
            if order(&item, &best)? == Some(want) {
                best = item;
            }
        }
        return Ok(best);
    }
    if args.len() != 1 {
        return Err(Unsupported);
    }
    let x = args.pop().ok_or(Unsupported)?;
    match f {
        Func::Len => Ok(Val::Int(match &x {
            Val::Str(s) => s.chars().count(),
            Val::LitTuple(t) => t.len(),
            Val::Tuple(t) => t.len(),
            Val::Map(m) => m.len(),
            Val::List(l) => l.len(),
            Val::Signals => signal_key_count(env.snapshot.signals()),
            _ => return Err(Unsupported),
        } as i64)),
        Func::Abs => match x {
            Val::Bool(b) => Ok(Val::Int(i64::from(b))),
            Val::Int(i) => i.checked_abs().map(Val::Int).ok_or(Unsupported),
            Val::Float(v) => Ok(Val::Float(v.abs())),
            _ => Err(Unsupported),
        },
        Func::Int => match x {
            Val::Bool(b) => Ok(Val::Int(i64::from(b))),
            Val::Int(i) => Ok(Val::Int(i)),
            Val::Float(v) => {
                if !v.is_finite() || v.abs() >= 9.2e18 {
                    return Err(Unsupported);
                }
                Ok(Val::Int(v.trunc() as i64))
            }
            Val::Str(s) => parse_int(&s).map(Val::Int).ok_or(Unsupported),
            _ => Err(Unsupported),
        },
        Func::Float => match x {
            Val::Bool(b) => Ok(Val::Float(if b { 1.0 } else { 0.0 })),
            Val::Int(i) => Ok(Val::Float(i as f64)),
            Val::Float(v) => Ok(Val::Float(v)),
            Val::Str(s) => parse_float(&s).map(Val::Float).ok_or(Unsupported),
            _ => Err(Unsupported),
        },
        Func::Str => match x {
            Val::Str(s) => Ok(Val::Str(s)),
            Val::None => Ok(Val::Str(Cow::Borrowed("None"))),
            Val::Bool(b) => Ok(Val::Str(Cow::Borrowed(if b { "True" } else { "False" }))),
            Val::Int(i) => Ok(Val::Str(Cow::Owned(i.to_string()))),
            Val::Float(v) => float_text(v)
                .map(|t| Val::Str(Cow::Owned(t)))
                .ok_or(Unsupported),
            _ => Err(Unsupported),
        },
        Func::Bool => Ok(Val::Bool(truthy(env, &x)?)),
        Func::Min | Func::Max => Err(Unsupported), // handled above
    }
}

// ------------------------------------------------------------------------------------------
// evaluation

/// Evaluate `expr` in `env`. [`Unsupported`] means: evaluate it in Python instead (which
/// gives the value, or raises the error of the language).
pub fn eval<'a, L: Clone, V: View<L>>(expr: &'a Expr, env: &Env<'a, L, V>) -> R<Val<'a, L>> {
    eval_at(expr, env, 0)
}

fn eval_at<'a, L: Clone, V: View<L>>(
    expr: &'a Expr,
    env: &Env<'a, L, V>,
    depth: usize,
) -> R<Val<'a, L>> {
    if depth > MAX_EXPR_DEPTH {
        return Err(Unsupported);
    }
    let sub = |e: &'a Expr| eval_at(e, env, depth + 1);
    match expr {
        Expr::Const(l) => Ok(lit(l)),
        Expr::Read(root, keys) => {
            let mut v = env.root(root)?;
            for k in keys {
                v = match (&v, k) {
                    (Val::Map(m), Key::Str(s)) => env.value(m.get(s).ok_or(Unsupported)?),
                    _ => index(env, v, &key_val::<L>(k))?,
                };
            }
            Ok(v)
        }
        Expr::Index(base, key) => {
            let b = sub(base)?;
            let k = sub(key)?;
            if !matches!(k, Val::Str(_) | Val::Int(_)) {
                return Err(Unsupported);
            }
            index(env, b, &k)
        }
        Expr::Get(base, key, default) => {
            let b = sub(base)?;
            let k = sub(key)?;
            let d = sub(default)?;
            match (&b, &k) {
                (Val::Map(m), Val::Str(s)) => Ok(m.get(s).map_or(d, |v| env.value(v))),
                (Val::Map(_), x) if hashable_known(x) => Ok(d),
                (Val::Signals, Val::Str(s)) => Ok(env.signal(s).unwrap_or(d)),
                (Val::Signals, x) if hashable_known(x) => Ok(d),
                _ => Err(Unsupported),
            }
        }
        Expr::Cmp(ops, operands) => {
            let mut left = sub(operands.first().ok_or(Unsupported)?)?;
            for (op, right) in ops.iter().zip(&operands[1..]) {
                let right = sub(right)?;
                let ok = match op {
                    CmpOp::Eq => eq(&left, &right)?,
                    CmpOp::Ne => !eq(&left, &right)?,
                    CmpOp::Lt => order(&left, &right)? == Some(Ordering::Less),
                    CmpOp::Le => matches!(
                        order(&left, &right)?,
                        Some(Ordering::Less | Ordering::Equal)
                    ),
                    CmpOp::Gt => order(&left, &right)? == Some(Ordering::Greater),
                    CmpOp::Ge => matches!(
                        order(&left, &right)?,
                        Some(Ordering::Greater | Ordering::Equal)
                    ),
                    CmpOp::In => contains(env, &left, &right)?,
                    CmpOp::NotIn => !contains(env, &left, &right)?,
                    CmpOp::Is | CmpOp::IsNot => {
                        let same = match (&left, &right) {
                            (Val::None, Val::None) => true,
                            (Val::Bool(x), Val::Bool(y)) => x == y,
                            (_, Val::None | Val::Bool(_)) => false,
                            _ => return Err(Unsupported),
                        };
                        same == (*op == CmpOp::Is)
                    }
                };
                if !ok {
                    return Ok(Val::Bool(false));
                }
                left = right;
            }
            Ok(Val::Bool(true))
        }
        Expr::And(items) | Expr::Or(items) => {
            let want = matches!(expr, Expr::Or(_));
            let mut last = Val::Bool(!want);
            for item in items {
                last = sub(item)?;
                if truthy(env, &last)? == want {
                    return Ok(last);
                }
            }
            Ok(last)
        }
        Expr::Not(x) => Ok(Val::Bool(!truthy(env, &sub(x)?)?)),
        Expr::Neg(x) => match sub(x)? {
            Val::Bool(b) => Ok(Val::Int(-i64::from(b))),
            Val::Int(i) => i.checked_neg().map(Val::Int).ok_or(Unsupported),
            Val::Float(f) => Ok(Val::Float(-f)),
            _ => Err(Unsupported),
        },
        Expr::Pos(x) => match sub(x)? {
            Val::Bool(b) => Ok(Val::Int(i64::from(b))),
            v @ (Val::Int(_) | Val::Float(_)) => Ok(v),
            _ => Err(Unsupported),
        },
        Expr::Bin(op, a, b) => {
            let a = sub(a)?;
            let b = sub(b)?;
            if *op == BinOp::Mod && matches!(a, Val::Str(_)) {
                return Err(Unsupported); // a load-time-documented error
            }
            binop(*op, a, b)
        }
        Expr::If(test, body, orelse) => {
            if truthy(env, &sub(test)?)? {
                sub(body)
            } else {
                sub(orelse)
            }
        }
        Expr::Call(f, args) => {
            let mut vals = Vec::with_capacity(args.len());
            for a in args {
                vals.push(sub(a)?);
            }
            call(env, *f, vals)
        }
        Expr::Tuple(items) => {
            let mut vals = Vec::with_capacity(items.len());
            for a in items {
                vals.push(sub(a)?);
            }
            Ok(Val::Tuple(vals))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test leaves: a scalar, or something the view calls `Other`.
    #[derive(Clone, Debug, PartialEq)]
    enum T {
        N,
        B(bool),
        I(i64),
        F(f64),
        S(String),
        X,
    }

    struct TView;

    impl View<T> for TView {
        fn scalar<'a>(&'a self, leaf: &'a T) -> Scalar<'a> {
            match leaf {
                T::N => Scalar::None,
                T::B(b) => Scalar::Bool(*b),
                T::I(i) => Scalar::Int(*i),
                T::F(f) => Scalar::Float(*f),
                T::S(s) => Scalar::Str(s),
                T::X => Scalar::Other,
            }
        }
    }

    fn snapshot() -> Snapshot<T> {
        let mut domain = PMap::new();
        domain.insert("count".into(), Value::Leaf(T::I(3)));
        domain.insert("ratio".into(), Value::Leaf(T::F(0.5)));
        domain.insert("name".into(), Value::Leaf(T::S("héllo".into())));
        domain.insert("flag".into(), Value::Leaf(T::B(true)));
        domain.insert("none".into(), Value::Leaf(T::N));
        domain.insert("odd".into(), Value::Leaf(T::X));
        domain.insert(
            "items".into(),
            Value::List(
                [1, 2, 3]
                    .map(|i| Value::Leaf(T::I(i)))
                    .into_iter()
                    .collect(),
            ),
        );
        domain.insert("empty".into(), Value::empty_map());
        let mut root = PMap::new();
        root.insert("domain".into(), Value::Map(domain));
        let signals = vec![
            (Path::parse("domain.sig_go").unwrap(), T::B(true)),
            (Path::parse("global.sig_go").unwrap(), T::I(7)),
        ];
        Snapshot::new(4, root, signals)
    }

    fn read(root: &str, keys: &[&str]) -> Expr {
        Expr::Read(
            root.into(),
            keys.iter().map(|k| Key::Str((*k).into())).collect(),
        )
    }

    fn c(l: Lit) -> Expr {
        Expr::Const(l)
    }

    fn cmp(op: CmpOp, a: Expr, b: Expr) -> Expr {
        Expr::Cmp(vec![op], vec![a, b])
    }

    fn run(e: &Expr) -> R<String> {
        let snap = snapshot();
        let inputs = [("limit", T::I(10))];
        let env = Env {
            snapshot: &snap,
            inputs: &inputs,
            view: &TView,
        };
        eval(e, &env).map(|v| format!("{v:?}"))
    }

    #[test]
    fn reads_and_comparisons() {
        assert_eq!(run(&read("domain", &["count"])), Ok("Int(3)".into()));
        let lt = cmp(CmpOp::Lt, read("domain", &["count"]), read("limit", &[]));
        assert_eq!(run(&lt), Ok("Bool(true)".into()));
        // 1 == 1.0 == True
        let chain = Expr::Cmp(
            vec![CmpOp::Eq, CmpOp::Eq],
            vec![c(Lit::Int(1)), c(Lit::Float(1.0)), c(Lit::Bool(true))],
        );
        assert_eq!(run(&chain), Ok("Bool(true)".into()));
        // None < 1 raises in Python: unsupported here
        assert_eq!(
            run(&cmp(CmpOp::Lt, c(Lit::None), c(Lit::Int(1)))),
            Err(Unsupported)
        );
        // a missing key, an opaque leaf
        assert_eq!(run(&read("domain", &["nope"])), Err(Unsupported));
        assert_eq!(
            run(&cmp(CmpOp::Eq, read("domain", &["odd"]), c(Lit::Int(1)))),
            Err(Unsupported)
        );
        // exact int/float comparison
        assert_eq!(
            cmp_int_float(9_007_199_254_740_993, 9_007_199_254_740_992.0),
            Some(Ordering::Greater)
        );
        assert_eq!(cmp_int_float(3, f64::NAN), None);
        assert_eq!(
            cmp_int_float(i64::MAX, i64::MAX as f64),
            Some(Ordering::Less)
        );
    }

    #[test]
    fn signals_by_bare_key_and_path() {
        assert_eq!(run(&read("signal", &["sig_go"])), Ok("Int(7)".into()));
        assert_eq!(
            run(&read("signal", &["domain.sig_go"])),
            Ok("Bool(true)".into())
        );
        let get = Expr::Get(
            Box::new(read("signal", &[])),
            Box::new(c(Lit::Str("cmd_stop".into()))),
            Box::new(c(Lit::None)),
        );
        assert_eq!(run(&get), Ok("None".into()));
        assert_eq!(
            run(&Expr::Call(Func::Len, vec![read("signal", &[])])),
            Ok("Int(3)".into())
        );
    }

    #[test]
    fn and_or_return_operands() {
        let e = Expr::Or(vec![
            c(Lit::Int(0)),
            c(Lit::Str("".into())),
            read("domain", &["name"]),
        ]);
        assert_eq!(run(&e), Ok("Str(\"héllo\")".into()));
        let e = Expr::And(vec![
            c(Lit::Int(2)),
            c(Lit::None),
            read("domain", &["nope"]),
        ]);
        assert_eq!(run(&e), Ok("None".into()));
    }

    #[test]
    fn arithmetic_follows_python() {
        let bin = |op, a, b| run(&Expr::Bin(op, Box::new(c(a)), Box::new(c(b))));
        assert_eq!(
            bin(BinOp::FloorDiv, Lit::Int(-7), Lit::Int(2)),
            Ok("Int(-4)".into())
        );
        assert_eq!(
            bin(BinOp::Mod, Lit::Int(-7), Lit::Int(2)),
            Ok("Int(1)".into())
        );
        assert_eq!(
            bin(BinOp::Mod, Lit::Int(7), Lit::Int(-2)),
            Ok("Int(-1)".into())
        );
        assert_eq!(
            bin(BinOp::Mod, Lit::Float(-7.5), Lit::Float(2.0)),
            Ok("Float(0.5)".into())
        );
        assert_eq!(
            bin(BinOp::FloorDiv, Lit::Float(7.0), Lit::Float(-2.0)),
            Ok("Float(-4.0)".into())
        );
        assert_eq!(bin(BinOp::Div, Lit::Int(1), Lit::Int(0)), Err(Unsupported));
        assert_eq!(
            bin(BinOp::Add, Lit::Int(i64::MAX), Lit::Int(1)),
            Err(Unsupported)
        );
        assert_eq!(
            bin(BinOp::Pow, Lit::Int(2), Lit::Int(10)),
            Ok("Int(1024)".into())
        );
        assert_eq!(bin(BinOp::Pow, Lit::Int(2), Lit::Int(64)), Err(Unsupported));
        assert_eq!(
            bin(BinOp::Add, Lit::Bool(true), Lit::Bool(true)),
            Ok("Int(2)".into())
        );
        assert_eq!(
            bin(BinOp::Mul, Lit::Str("ab".into()), Lit::Int(2)),
            Ok("Str(\"abab\")".into())
        );
        assert_eq!(
            bin(BinOp::Mul, Lit::Str("ab".into()), Lit::Int(5001)),
            Err(Unsupported)
        );
        assert_eq!(
            bin(BinOp::Mod, Lit::Str("%s".into()), Lit::Int(1)),
            Err(Unsupported)
        );
    }

    #[test]
    fn membership_and_functions() {
        let tuple = c(Lit::Tuple(vec![Lit::Str("a".into()), Lit::Int(3)]));
        assert_eq!(
            run(&cmp(CmpOp::In, read("domain", &["count"]), tuple.clone())),
            Ok("Bool(true)".into())
        );
        assert_eq!(
            run(&cmp(CmpOp::In, c(Lit::Int(2)), read("domain", &["items"]))),
            Ok("Bool(true)".into())
        );
        assert_eq!(
            run(&cmp(
                CmpOp::In,
                c(Lit::Str("count".into())),
                read("domain", &[])
            )),
            Ok("Bool(true)".into())
        );
        assert_eq!(
            run(&cmp(CmpOp::In, c(Lit::Int(1)), read("domain", &[]))),
            Ok("Bool(false)".into())
        );
        assert_eq!(
            run(&Expr::Call(Func::Len, vec![read("domain", &["name"])])),
            Ok("Int(5)".into())
        );
        assert_eq!(
            run(&Expr::Call(Func::Max, vec![read("domain", &["items"])])),
            Ok("Int(3)".into())
        );
        assert_eq!(
            run(&Expr::Call(
                Func::Min,
                vec![c(Lit::Int(2)), c(Lit::Float(1.5))]
            )),
            Ok("Float(1.5)".into())
        );
        assert_eq!(
            run(&Expr::Call(Func::Str, vec![c(Lit::Float(2.0))])),
            Ok("Str(\"2.0\")".into())
        );
        assert_eq!(
            run(&Expr::Call(Func::Str, vec![c(Lit::Float(0.1))])),
            Err(Unsupported)
        );
        assert_eq!(
            run(&Expr::Call(Func::Int, vec![c(Lit::Str("-42".into()))])),
            Ok("Int(-42)".into())
        );
        assert_eq!(
            run(&Expr::Call(Func::Int, vec![c(Lit::Str("4_2".into()))])),
            Err(Unsupported)
        );
        assert_eq!(
            run(&Expr::Call(Func::Float, vec![c(Lit::Str("1.5e3".into()))])),
            Ok("Float(1500.0)".into())
        );
        assert_eq!(
            run(&Expr::Call(Func::Float, vec![c(Lit::Str("nan".into()))])),
            Err(Unsupported)
        );
        assert_eq!(
            run(&Expr::Call(Func::Bool, vec![read("domain", &["empty"])])),
            Ok("Bool(false)".into())
        );
    }

    #[test]
    fn depth_is_guarded() {
        let mut e = c(Lit::Int(1));
        for _ in 0..(MAX_EXPR_DEPTH + 5) {
            e = Expr::Neg(Box::new(e));
        }
        assert_eq!(e.depth(), MAX_EXPR_DEPTH + 6);
        assert_eq!(run(&e), Err(Unsupported));
        assert_eq!(
            Expr::And(vec![read("a", &[]), read("b", &["x"]), read("a", &[])]).roots(),
            vec!["a", "b"]
        );
    }
}
