//! `NativeExpression`: a Flux condition evaluated by the core's [`theus_core::expr`] against
//! the engine's latest snapshot (spec/18 §2.6), with the Python `Expression` as the fallback.
//!
//! Leaves are read where they are (a scalar view of the Python object: exact `None`, `bool`,
//! `int` fitting 64 bits, `float`, `str`); no map or list is converted. Whatever the core
//! does not evaluate exactly is evaluated again by the Python `Expression` on a scope of the
//! *same* snapshot (taken once per call), so the value or the `FluxError` text is the Python
//! one. No lock is held while Python runs: the snapshot is an `Arc` loaded lock-free.

use std::sync::Arc;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString, PyTuple};
use theus_core::expr::{
    self, BinOp, CmpOp, Env, Expr, Func, Key, Lit, Scalar, Val, View, MAX_EXPR_DEPTH,
};

use crate::engine::Engine;
use crate::Leaf;

/// The scalar view of Python leaves: only exact built-in types are modelled.
struct PyView<'py>(Python<'py>);

impl View<Leaf> for PyView<'_> {
    fn scalar<'a>(&'a self, leaf: &'a Leaf) -> Scalar<'a> {
        let obj = leaf.bind(self.0);
        if obj.is_none() {
            Scalar::None
        } else if obj.is_exact_instance_of::<PyBool>() {
            obj.cast::<PyBool>()
                .map_or(Scalar::Other, |b| Scalar::Bool(b.is_true()))
        } else if obj.is_exact_instance_of::<PyInt>() {
            obj.extract::<i64>().map_or(Scalar::Other, Scalar::Int)
        } else if obj.is_exact_instance_of::<PyFloat>() {
            obj.cast::<PyFloat>()
                .map_or(Scalar::Other, |f| Scalar::Float(f.value()))
        } else if obj.is_exact_instance_of::<PyString>() {
            match obj.cast::<PyString>() {
                Ok(s) => s.to_str().map_or(Scalar::Other, Scalar::Str),
                Err(_) => Scalar::Other,
            }
        } else {
            Scalar::Other
        }
    }
}

fn text<'a>(obj: &'a Bound<'_, PyAny>) -> Option<&'a str> {
    obj.cast::<PyString>().ok()?.to_str().ok()
}

fn items<'py>(obj: &Bound<'py, PyAny>) -> Option<Vec<Bound<'py, PyAny>>> {
    Some(obj.cast::<PyTuple>().ok()?.iter().collect())
}

fn literal(obj: &Bound<'_, PyAny>, depth: usize) -> Option<Lit> {
    if depth > MAX_EXPR_DEPTH {
        return None;
    }
    if obj.is_none() {
        return Some(Lit::None);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Some(Lit::Bool(b.is_true()));
    }
    if obj.is_exact_instance_of::<PyInt>() {
        return obj.extract::<i64>().ok().map(Lit::Int);
    }
    if let Ok(f) = obj.cast_exact::<PyFloat>() {
        return Some(Lit::Float(f.value()));
    }
    if obj.is_exact_instance_of::<PyString>() {
        return text(obj).map(|s| Lit::Str(s.into()));
    }
    if obj.is_exact_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for item in items(obj)? {
            out.push(literal(&item, depth + 1)?);
        }
        return Some(Lit::Tuple(out));
    }
    None
}

fn nodes(obj: &Bound<'_, PyAny>, depth: usize) -> Option<Vec<Expr>> {
    items(obj)?.iter().map(|n| from_ir(n, depth)).collect()
}

/// The core tree of an IR node (spec/18 §2.6), or `None` for anything it does not take.
fn from_ir(node: &Bound<'_, PyAny>, depth: usize) -> Option<Expr> {
    if depth > MAX_EXPR_DEPTH {
        return None;
    }
    let parts = items(node)?;
    let kind = text(parts.first()?)?;
    let d = depth + 1;
    let sub = |i: usize| -> Option<Box<Expr>> { from_ir(parts.get(i)?, d).map(Box::new) };
    let arity = |n: usize| (parts.len() == n).then_some(());
    Some(match kind {
        "const" => {
            arity(2)?;
            Expr::Const(literal(&parts[1], d)?)
        }
        "read" => {
            arity(3)?;
            let mut keys = Vec::new();
            for k in items(&parts[2])? {
                keys.push(if k.is_exact_instance_of::<PyInt>() {
                    Key::Int(k.extract::<i64>().ok()?)
                } else if k.is_exact_instance_of::<PyString>() {
                    Key::Str(text(&k)?.into())
                } else {
                    return None;
                });
            }
            Expr::Read(text(&parts[1])?.into(), keys)
        }
        "index" => {
            arity(3)?;
            Expr::Index(sub(1)?, sub(2)?)
        }
        "get" => {
            arity(4)?;
            Expr::Get(sub(1)?, sub(2)?, sub(3)?)
        }
        "cmp" => {
            arity(3)?;
            let ops = items(&parts[1])?
                .iter()
                .map(|o| text(o).and_then(CmpOp::parse))
                .collect::<Option<Vec<_>>>()?;
            let operands = nodes(&parts[2], d)?;
            if ops.is_empty() || operands.len() != ops.len() + 1 {
                return None;
            }
            Expr::Cmp(ops, operands)
        }
        "and" | "or" => {
            arity(2)?;
            let operands = nodes(&parts[1], d)?;
            if operands.is_empty() {
                return None;
            }
            if kind == "and" {
                Expr::And(operands)
            } else {
                Expr::Or(operands)
            }
        }
        "not" | "neg" | "pos" => {
            arity(2)?;
            let x = sub(1)?;
            match kind {
                "not" => Expr::Not(x),
                "neg" => Expr::Neg(x),
                _ => Expr::Pos(x),
            }
        }
        "bin" => {
            arity(4)?;
            Expr::Bin(BinOp::parse(text(&parts[1])?)?, sub(2)?, sub(3)?)
        }
        "if" => {
            arity(4)?;
            Expr::If(sub(1)?, sub(2)?, sub(3)?)
        }
        "call" => {
            arity(3)?;
            Expr::Call(Func::parse(text(&parts[1])?)?, nodes(&parts[2], d)?)
        }
        "tuple" => {
            arity(2)?;
            Expr::Tuple(nodes(&parts[1], d)?)
        }
        _ => return None,
    })
}

/// The Python object of a native result, or `None` when the result is a view of the state
/// (the Python evaluation returns it).
fn to_python(py: Python<'_>, v: &Val<'_, Leaf>) -> PyResult<Option<Py<PyAny>>> {
    Ok(Some(match v {
        Val::None => py.None(),
        Val::Bool(b) => PyBool::new(py, *b).to_owned().into_any().unbind(),
        Val::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Val::Float(f) => PyFloat::new(py, *f).into_any().unbind(),
        Val::Str(s) => PyString::new(py, s).into_any().unbind(),
        Val::LitTuple(_) | Val::Tuple(_) => {
            let n = match v {
                Val::LitTuple(t) => t.len(),
                Val::Tuple(t) => t.len(),
                _ => 0,
            };
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let item = match v {
                    Val::LitTuple(t) => lit_val(&t[i]),
                    Val::Tuple(t) => t[i].clone(),
                    _ => Val::None,
                };
                match to_python(py, &item)? {
                    Some(obj) => out.push(obj),
                    None => return Ok(None),
                }
            }
            PyTuple::new(py, out)?.into_any().unbind()
        }
        Val::Opaque(leaf) => leaf.get(py),
        Val::Map(_) | Val::List(_) | Val::Signals => return Ok(None),
    }))
}

fn lit_val(l: &Lit) -> Val<'_, Leaf> {
    match l {
        Lit::None => Val::None,
        Lit::Bool(b) => Val::Bool(*b),
        Lit::Int(i) => Val::Int(*i),
        Lit::Float(f) => Val::Float(*f),
        Lit::Str(s) => Val::Str(std::borrow::Cow::Borrowed(s)),
        Lit::Tuple(t) => Val::LitTuple(t),
    }
}

/// A condition compiled for one engine (`engine.compile_expression(expression)`): `test` and
/// `evaluate` read the engine's latest committed snapshot at each call.
#[pyclass(module = "theus_rust._native", frozen)]
pub struct NativeExpression {
    tree: Expr,
    /// The root names the tree reads (each may be shadowed by an input), as text and as
    /// Python strings.
    roots: Vec<(Box<str>, Py<PyString>)>,
    engine: Py<Engine>,
    expression: Py<PyAny>,
    snapshot_scope: Py<PyAny>,
}

/// `engine.compile_expression(expression)`: the native form of a `theus.flux.Expression`, or
/// `None` when its IR has something the native evaluator does not take.
pub(crate) fn compile(
    engine: &Bound<'_, Engine>,
    expression: &Bound<'_, PyAny>,
) -> PyResult<Option<Py<NativeExpression>>> {
    let py = engine.py();
    let ir = expression.getattr(intern!(py, "ir"))?;
    let Some(tree) = from_ir(&ir, 0) else {
        return Ok(None);
    };
    if tree.depth() > MAX_EXPR_DEPTH {
        return Ok(None);
    }
    let roots = tree
        .roots()
        .into_iter()
        .map(|r| (Box::<str>::from(r), PyString::intern(py, r).unbind()))
        .collect();
    let snapshot_scope = py
        .import("theus.flux.expr")?
        .getattr("snapshot_scope")?
        .unbind();
    Ok(Some(Py::new(
        py,
        NativeExpression {
            tree,
            roots,
            engine: engine.clone().unbind(),
            expression: expression.clone().unbind(),
            snapshot_scope,
        },
    )?))
}

type Snap = Arc<theus_core::Snapshot<Leaf>>;

impl NativeExpression {
    /// The inputs the tree reads, as leaves; `None` when `inputs` is not a plain dict (then
    /// Python evaluates).
    fn inputs<'s>(
        &'s self,
        py: Python<'_>,
        inputs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<Vec<(&'s str, Leaf)>>> {
        let mut out = Vec::new();
        let Some(given) = inputs.filter(|i| !i.is_none()) else {
            return Ok(Some(out));
        };
        let Ok(dict) = given.cast_exact::<PyDict>() else {
            return Ok(None);
        };
        if dict.is_empty() {
            return Ok(Some(out));
        }
        for (name, key) in &self.roots {
            if let Some(value) = dict.get_item(key.bind(py))? {
                out.push((&**name, Leaf::new(value.unbind())));
            }
        }
        Ok(Some(out))
    }

    /// The Python evaluation (`method` of the `Expression`) on a scope of `snap`.
    fn fallback<'py>(
        &self,
        py: Python<'py>,
        snap: Snap,
        inputs: Option<&Bound<'py, PyAny>>,
        method: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let snapshot = self.engine.get().snapshot_object(py, snap)?;
        let scope_fn = self.snapshot_scope.bind(py);
        let scope = match inputs.filter(|i| !i.is_none()) {
            Some(given) => scope_fn.call1((snapshot, given))?,
            None => scope_fn.call1((snapshot,))?,
        };
        self.expression.bind(py).call_method1(method, (scope,))
    }
}

#[pymethods]
impl NativeExpression {
    /// The truth of the expression (Python truthiness of its value) on the engine's latest
    /// snapshot, `inputs` giving the workflow inputs by name.
    #[pyo3(signature = (inputs = None))]
    fn test(&self, py: Python<'_>, inputs: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        let snap = self.engine.get().store.current();
        if let Some(leaves) = self.inputs(py, inputs)? {
            let view = PyView(py);
            let env = Env {
                snapshot: &snap,
                inputs: &leaves,
                view: &view,
            };
            if let Ok(value) = expr::eval(&self.tree, &env) {
                if let Ok(truth) = expr::truthy(&env, &value) {
                    return Ok(truth);
                }
            }
        }
        self.fallback(py, snap, inputs, intern!(py, "test"))?
            .extract()
    }

    /// The value of the expression on the engine's latest snapshot.
    #[pyo3(signature = (inputs = None))]
    fn evaluate(&self, py: Python<'_>, inputs: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let snap = self.engine.get().store.current();
        if let Some(leaves) = self.inputs(py, inputs)? {
            let view = PyView(py);
            let env = Env {
                snapshot: &snap,
                inputs: &leaves,
                view: &view,
            };
            if let Ok(value) = expr::eval(&self.tree, &env) {
                if let Some(obj) = to_python(py, &value)? {
                    return Ok(obj);
                }
            }
        }
        Ok(self
            .fallback(py, snap, inputs, intern!(py, "evaluate"))?
            .unbind())
    }

    /// Whether the native evaluator alone computes `test(inputs)` on the latest snapshot
    /// (`False`: that call falls back to the Python evaluation). A diagnostic for tests.
    #[pyo3(signature = (inputs = None))]
    fn covers(&self, py: Python<'_>, inputs: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        let snap = self.engine.get().store.current();
        let Some(leaves) = self.inputs(py, inputs)? else {
            return Ok(false);
        };
        let view = PyView(py);
        let env = Env {
            snapshot: &snap,
            inputs: &leaves,
            view: &view,
        };
        Ok(expr::eval(&self.tree, &env).is_ok_and(|v| expr::truthy(&env, &v).is_ok()))
    }

    /// The `theus.flux.Expression` this was compiled from.
    #[getter]
    fn expression(&self, py: Python<'_>) -> Py<PyAny> {
        self.expression.clone_ref(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let text = self.expression.bind(py).getattr("text")?;
        Ok(format!("<NativeExpression {}>", text.repr()?))
    }
}
