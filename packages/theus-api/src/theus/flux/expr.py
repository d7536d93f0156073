"""Flux condition expressions (spec/18-flux.md, "Expressions").

A condition is a small, documented subset of Python expression syntax. It is parsed once with
the standard library's :mod:`ast`, every node is checked against an allow-list, and the tree is
compiled into nested closures; nothing is ever handed to ``eval``/``exec``/``compile``.

::

    cond = compile_expression("domain.count < 10 and not signal.get('cmd_stop')")
    cond.test({"domain": {"count": 3}, "signal": {}})      # True
    cond.test(snapshot_scope(engine.state))                # reads the snapshot lazily
"""

from __future__ import annotations

import ast
import io
import keyword
import logging
import operator
import re
import tokenize
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ..errors import FluxError
from ..paths import shorten

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_INT_BITS",
    "MAX_NODES",
    "MAX_REPEAT_LEN",
    "MAX_TEXT",
    "RESERVED_ATTRIBUTES",
    "IR",
    "Expression",
    "compile_expression",
    "snapshot_scope",
]

_log = logging.getLogger("theus")

#: longest accepted expression text, in characters
MAX_TEXT = 2000
#: most AST nodes in one expression
MAX_NODES = 400
#: deepest AST nesting in one expression
MAX_DEPTH = 32
#: an int result of arithmetic may not need more bits than this
MAX_INT_BITS = 4096
#: a string/list/tuple repetition (``'a' * n``) may not produce more items than this
MAX_REPEAT_LEN = 10_000

#: the functions a condition may call, with their (min, max) argument counts
FUNCTIONS: Mapping[str, tuple[int, int | None]] = {
    "len": (1, 1),
    "min": (1, None),
    "max": (1, None),
    "abs": (1, 1),
    "int": (1, 1),
    "float": (1, 1),
    "str": (1, 1),
    "bool": (1, 1),
}

#: ``.name`` key reads refused at load (read such a key as ``x['name']``): ``get`` (the one
#: method a condition may call) and the Python introspection names used by known sandbox
#: escapes. Every other ``.name`` is a key lookup, never an attribute access.
RESERVED_ATTRIBUTES = frozenset(
    {
        "get", "mro", "format", "format_map", "func_globals", "func_code", "func_closure",
        "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "f_globals",
        "f_locals", "f_builtins", "f_back", "f_code", "tb_frame", "tb_next", "co_code",
        "im_func", "im_self", "im_class", "mro_entries",
    }
)  # fmt: skip

_SIGNAL_ROOTS = ("signal", "cmd")
#: a name starting with `_`, or `global`, may be in the text: tokenize it
_NEEDS_TOKENS = re.compile(r"(?<![A-Za-z0-9_])_|\bglobal\b")
_GLOBAL_SPELLING = "_glob_"  # as long as "global": columns stay put; users cannot write it


def _extreme(pick: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``min``/``max`` with one message for an empty sequence on every Python version."""

    def call(*args: Any) -> Any:
        if len(args) == 1:
            try:
                empty = len(args[0]) == 0
            except TypeError:
                empty = False
            if empty:
                raise ValueError(f"{name}() of an empty sequence")
        return pick(*args)

    return call


_FUNCS: dict[str, Callable[..., Any]] = {
    "len": len,
    "min": _extreme(min, "min"),
    "max": _extreme(max, "max"),
    "abs": abs,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
}

_REJECTED_NODES: dict[type[ast.AST], str] = {
    ast.Lambda: "a lambda",
    ast.ListComp: "a list comprehension",
    ast.SetComp: "a set comprehension",
    ast.DictComp: "a dict comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.NamedExpr: "an assignment expression (:=)",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.Starred: "a starred expression",
    ast.Dict: "a dict display",
    ast.Set: "a set display",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "a slice",
}

_OP_NAMES: dict[type[ast.AST], str] = {
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.MatMult: "@",
    ast.Invert: "~",
}


class _EvalError(Exception):
    """An evaluation problem; :meth:`Expression.evaluate` turns it into a FluxError."""


class _Missing:
    __slots__ = ()


_NOTHING = _Missing()


# ------------------------------------------------------------------------------------------
# bounded arithmetic


def _check_int(value: Any) -> Any:
    if type(value) is int and value.bit_length() > MAX_INT_BITS:
        raise _EvalError(f"integer result too large (more than {MAX_INT_BITS} bits)")
    return value


def _is_seq(value: object) -> bool:
    return isinstance(value, str | bytes | Sequence) and not isinstance(value, Mapping)


def _add(a: Any, b: Any) -> Any:
    return _check_int(a + b)


def _sub(a: Any, b: Any) -> Any:
    return _check_int(a - b)


def _mul(a: Any, b: Any) -> Any:
    if _is_seq(a) or _is_seq(b):
        seq, n = (a, b) if _is_seq(a) else (b, a)
        if isinstance(n, int) and n > 0 and len(seq) * n > MAX_REPEAT_LEN:
            raise _EvalError(f"repetition result too long (more than {MAX_REPEAT_LEN} items)")
    return _check_int(a * b)


def _truediv(a: Any, b: Any) -> Any:
    return a / b


def _floordiv(a: Any, b: Any) -> Any:
    return a // b


def _mod(a: Any, b: Any) -> Any:
    if isinstance(a, str | bytes):
        raise _EvalError("'%' formatting of strings is not allowed; compare values instead")
    return a % b


def _pow(a: Any, b: Any) -> Any:
    if (
        type(a) in (int, bool)
        and type(b) in (int, bool)
        and b > 0
        and abs(a) > 1
        and (abs(a).bit_length() - 1) * b > MAX_INT_BITS
    ):
        raise _EvalError(f"power result too large (more than {MAX_INT_BITS} bits)")
    return _check_int(a**b)


_BINOPS: dict[type[ast.AST], Callable[[Any, Any], Any]] = {
    ast.Add: _add,
    ast.Sub: _sub,
    ast.Mult: _mul,
    ast.Div: _truediv,
    ast.FloorDiv: _floordiv,
    ast.Mod: _mod,
    ast.Pow: _pow,
}

_CMPOPS: dict[type[ast.AST], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}

_Fn = Callable[[Mapping[str, Any]], Any]

_BIN_NAMES: dict[type[ast.AST], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}

_CMP_NAMES: dict[type[ast.AST], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}
#: a node of the canonical tree of spec/18 §2.6: a tuple whose first item names its kind
IR = tuple[Any, ...]


def _cmp_const(op: type[ast.AST], left: _Fn, c: Any) -> _Fn:
    """``left(s) OP c`` without an extra call per evaluation."""
    if op is ast.Eq:
        return lambda s: left(s) == c
    if op is ast.NotEq:
        return lambda s: left(s) != c
    if op is ast.Lt:
        return lambda s: left(s) < c
    if op is ast.LtE:
        return lambda s: left(s) <= c
    if op is ast.Gt:
        return lambda s: left(s) > c
    if op is ast.GtE:
        return lambda s: left(s) >= c
    if op is ast.Is:
        return lambda s: left(s) is c
    if op is ast.IsNot:
        return lambda s: left(s) is not c
    if op is ast.In:
        return lambda s: left(s) in c
    return lambda s: left(s) not in c


def _cmp2(op: type[ast.AST], left: _Fn, right: _Fn) -> _Fn:
    if op is ast.Eq:
        return lambda s: left(s) == right(s)
    if op is ast.NotEq:
        return lambda s: left(s) != right(s)
    if op is ast.Lt:
        return lambda s: left(s) < right(s)
    if op is ast.LtE:
        return lambda s: left(s) <= right(s)
    if op is ast.Gt:
        return lambda s: left(s) > right(s)
    if op is ast.GtE:
        return lambda s: left(s) >= right(s)
    fn = _CMPOPS[op]
    return lambda s: fn(left(s), right(s))


# ------------------------------------------------------------------------------------------
# reads


def _describe(value: object) -> str:
    if isinstance(value, Mapping):
        return "a map"
    if isinstance(value, str):
        return "a str"
    if isinstance(value, Sequence):
        return "a list"
    if value is None:
        return "None"
    return f"a {type(value).__name__}"


def _diagnose(scope: Mapping[str, Any], root: str, keys: tuple[Any, ...], text: str) -> NoReturn:
    """Walk ``root.keys`` step by step and raise an _EvalError saying where it stopped."""
    try:
        value = scope[root]
    except KeyError:
        raise _EvalError(f"there is no {root!r} to read (reading {text})") from None
    here = root
    for key in keys:
        shown = (
            f"{here}.{key}" if isinstance(key, str) and key.isidentifier() else f"{here}[{key!r}]"
        )
        try:
            value = value[key]
        except (KeyError, IndexError):
            where = "" if shown == text else f" (reading {text})"
            raise _EvalError(f"{shown} is missing{where}") from None
        except TypeError:
            raise _EvalError(
                f"cannot read {key!r} of {here}, which is {_describe(value)} (reading {text})"
            ) from None
        here = shown
    raise _EvalError(f"{text}: cannot be read")  # pragma: no cover - the fast path failed


def _path(root: str, keys: tuple[Any, ...], text: str) -> _Fn:
    """A read of ``root`` then each key of ``keys``, as one closure."""
    errors = (KeyError, IndexError, TypeError)
    if not keys:

        def read0(s: Mapping[str, Any]) -> Any:
            try:
                return s[root]
            except KeyError:
                _diagnose(s, root, keys, text)

        return read0
    if len(keys) == 1:
        (k0,) = keys

        def read1(s: Mapping[str, Any]) -> Any:
            try:
                return s[root][k0]
            except errors:
                _diagnose(s, root, keys, text)

        return read1
    if len(keys) == 2:
        k0, k1 = keys

        def read2(s: Mapping[str, Any]) -> Any:
            try:
                return s[root][k0][k1]
            except errors:
                _diagnose(s, root, keys, text)

        return read2

    def readn(s: Mapping[str, Any]) -> Any:
        try:
            value = s[root]
            for key in keys:
                value = value[key]
            return value
        except errors:
            _diagnose(s, root, keys, text)

    return readn


def _index(base: _Fn, key: _Fn, text: Callable[[], str]) -> _Fn:
    """``base[key]`` for a key computed at run time."""

    def read(s: Mapping[str, Any]) -> Any:
        value = base(s)
        k = key(s)
        if not isinstance(k, str | int) or isinstance(k, bool):
            raise _EvalError(f"{text()}: a key must be a str or an int, not {_describe(k)}")
        try:
            return value[k]
        except (KeyError, IndexError):
            raise _EvalError(f"{text()}: key {k!r} is missing") from None
        except TypeError:
            raise _EvalError(f"{text()}: cannot read {k!r} of {_describe(value)}") from None

    return read


def _get(
    base: _Fn,
    key: _Fn,
    default: _Fn | None,
    text: Callable[[], str],
    const: tuple[Any, Any] | None = None,
) -> _Fn:
    """``base.get(key[, default])`` on a map; ``const`` = (key, default) when both are
    literals."""
    if const is not None:
        k, d = const

        def read_const(s: Mapping[str, Any]) -> Any:
            value = base(s)
            if type(value) is dict or isinstance(value, Mapping):
                return value.get(k, d)
            raise _EvalError(f"{text()}: .get() needs a map, not {_describe(value)}")

        return read_const

    def read(s: Mapping[str, Any]) -> Any:
        value = base(s)
        if not isinstance(value, Mapping):
            raise _EvalError(f"{text()}: .get() needs a map, not {_describe(value)}")
        return value.get(key(s), None if default is None else default(s))

    return read


# ------------------------------------------------------------------------------------------
# the compiled expression


@dataclass(frozen=True, eq=False)
class Expression:
    """A parsed, checked and compiled condition (or ``with:`` expression).

    ``evaluate(scope)`` returns its value, ``test(scope)`` its truth. A scope maps each root
    name (``domain``, ``global``, every other namespace, ``signal`` and ``cmd``, the workflow's
    inputs) to its value; :func:`snapshot_scope` builds one from a snapshot, lazily. Any
    evaluation problem raises :class:`theus.errors.FluxError` naming the expression, its
    location and the path that failed.
    """

    #: the expression as written
    text: str
    #: where the expression is (1-based; None when unknown)
    file: str | None = None
    line: int | None = None
    column: int | None = None
    key_path: str | None = None
    #: the state reads it makes with constant keys, as dotted text (``domain.count``,
    #: ``signal.cmd_stop``), in source order without repeats
    reads: tuple[str, ...] = ()
    #: the root names it uses
    roots: frozenset[str] = frozenset()
    #: the checked, constant-folded tree as plain data (spec/18 §2.6, "Native evaluation"):
    #: what a backend's ``compile_expression`` evaluates natively
    ir: IR = ("const", None)
    _fn: _Fn = field(default=lambda s: None, repr=False)

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        """The expression's value in ``scope``."""
        try:
            return self._fn(scope)
        except _EvalError as exc:
            self._fail(str(exc))
        except (TypeError, ValueError, ArithmeticError, KeyError, IndexError) as exc:
            self._fail(f"{type(exc).__name__}: {exc}")
        except RecursionError:  # pragma: no cover - depth is capped at load
            self._fail("too deeply nested to evaluate")

    def test(self, scope: Mapping[str, Any]) -> bool:
        """The expression's truth in ``scope`` (Python truthiness of its value)."""
        try:
            return bool(self._fn(scope))
        except _EvalError as exc:
            self._fail(str(exc))
        except (TypeError, ValueError, ArithmeticError, KeyError, IndexError) as exc:
            self._fail(f"{type(exc).__name__}: {exc}")
        except RecursionError:  # pragma: no cover - depth is capped at load
            self._fail("too deeply nested to evaluate")

    def _fail(self, problem: str) -> NoReturn:
        raise FluxError(
            f"evaluating {shorten(self.text)}: {problem}",
            self.file,
            self.line,
            self.column,
            self.key_path,
            self.text,
        ) from None


class _Scope(dict[str, Any]):
    """A root-name -> value dict that fetches a namespace or the signals on first use."""

    __slots__ = ("_snapshot",)

    def __init__(self, snapshot: Any, inputs: Mapping[str, Any]) -> None:
        super().__init__(inputs)
        self._snapshot = snapshot

    def __missing__(self, key: str) -> Any:
        if key in _SIGNAL_ROOTS:
            signals: dict[str, Any] = {}
            for path, value in self._snapshot.signals.items():
                signals[path] = value
                signals[path.rsplit(".", 1)[-1]] = value
            self["signal"] = self["cmd"] = signals
            return signals
        try:
            value = self._snapshot[key]
        except (KeyError, TypeError):
            raise KeyError(key) from None
        self[key] = value
        return value


def snapshot_scope(snapshot: Any, inputs: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    """A scope reading ``snapshot``: each namespace by its name (``global`` too), ``signal`` /
    ``cmd`` as this version's signals by bare key (``sig_go``) and by full path
    (``domain.sig_go``), and ``inputs`` by name. Namespaces are fetched on first use; build
    one scope per snapshot and evaluation round."""
    return _Scope(snapshot, inputs or {})


# ------------------------------------------------------------------------------------------
# loading


class _Compiler:
    def __init__(
        self,
        text: str,
        position: Callable[[int, int], tuple[int | None, int | None]],
        file: str | None,
        key_path: str | None,
        inputs: Collection[str],
        namespaces: Collection[str] | None,
    ) -> None:
        self.text = text
        self.position = position
        self.file = file
        self.key_path = key_path
        self.inputs = frozenset(inputs)
        self.namespaces = None if namespaces is None else frozenset(namespaces)
        self.reads: list[str] = []
        self.roots: set[str] = set()
        self.wrapped = False
        #: the IR of each compiled node, by ``id`` (the tree is alive while compiling)
        self.irs: dict[int, IR] = {}

    def ir(self, node: ast.AST) -> IR:
        """The IR of an already compiled node."""
        return self.irs[id(node)]

    def fail(
        self, problem: str, node: ast.AST | None = None, at: tuple[int, int] | None = None
    ) -> NoReturn:
        if node is not None and hasattr(node, "lineno"):
            at = (getattr(node, "lineno", 1), getattr(node, "col_offset", 0))
        line, column = self.position(*(at or (1, 0)))
        raise FluxError(
            f"expression {shorten(self.text)}: {problem}",
            self.file,
            line,
            column,
            self.key_path,
            self.text,
        )

    # -- text -> tree ------------------------------------------------------------------------
    def parse(self) -> ast.expr:
        text = self.text
        if len(text) > MAX_TEXT:
            self.fail(f"too long ({len(text)} characters; at most {MAX_TEXT})")
        if not text.strip():
            self.fail("is empty")
        nul = text.find("\x00")
        if nul >= 0:  # CPython 3.12's tokenizer fails with SystemError on NUL
            row = text.count("\n", 0, nul) + 1
            self.fail("contains a NUL character", at=(row, nul - (text.rfind("\n", 0, nul) + 1)))
        source = self._rewrite(text)
        if "\n" in source:
            source = "(" + source + "\n)"
            self.wrapped = True
        try:
            with warnings.catch_warnings():  # e.g. SyntaxWarning "invalid decimal literal"
                warnings.simplefilter("ignore")
                tree = ast.parse(source, mode="eval")
        except SyntaxError as exc:
            line = exc.lineno or 1
            col = (exc.offset or 1) - 1
            if self.wrapped and line == 1:
                col = max(col - 1, 0)
            self.fail(f"invalid syntax: {exc.msg}", at=(line, col))
        except (RecursionError, MemoryError, ValueError) as exc:
            self.fail(f"cannot be parsed: {type(exc).__name__}")
        if self.wrapped:
            self._unshift(tree)
        return tree.body

    def _unshift(self, tree: ast.AST) -> None:
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) == 1 and hasattr(node, "col_offset"):
                node.col_offset = max(node.col_offset - 1, 0)

    def _rewrite(self, text: str) -> str:
        """Spell the name ``global`` as ``_glob_``; refuse ``_`` names at their token."""
        if not _NEEDS_TOKENS.search(text):
            return text  # nothing to rewrite or refuse at the token level
        lines = text.splitlines(keepends=True)
        hits: list[tuple[int, int]] = []
        try:
            for tok in tokenize.generate_tokens(io.StringIO(text).readline):
                if tok.type != tokenize.NAME:
                    continue
                if tok.string.startswith("_"):
                    what = "dunder" if tok.string.startswith("__") else "'_'"
                    self.fail(
                        f"the name {tok.string!r} is not allowed ({what} names are never "
                        "readable in a condition)",
                        at=tok.start,
                    )
                if tok.string == "global":
                    hits.append(tok.start)
        except (tokenize.TokenError, IndentationError, SyntaxError):
            return text  # ast.parse reports the problem with its position
        for row, col in hits:
            s = lines[row - 1]
            lines[row - 1] = s[:col] + _GLOBAL_SPELLING + s[col + len("global") :]
        return "".join(lines)

    # -- checks ------------------------------------------------------------------------------
    def check_shape(self, root: ast.AST) -> None:
        """Size and depth caps, iteratively (before any recursive pass)."""
        count = 0
        stack: list[tuple[ast.AST, int]] = [(root, 1)]
        while stack:
            node, depth = stack.pop()
            count += 1
            if count > MAX_NODES:
                self.fail(f"too large (more than {MAX_NODES} syntax nodes)", node)
            if depth > MAX_DEPTH:
                self.fail(f"nested too deeply (more than {MAX_DEPTH} levels)", node)
            for child in ast.iter_child_nodes(node):
                stack.append((child, depth + 1))

    # -- tree -> closures ----------------------------------------------------------------------
    def compile(self, node: ast.expr) -> tuple[_Fn, Any]:
        """The closure for ``node`` and its constant value (``_NOTHING`` if not constant)."""
        fn, const = self._compile(node)
        if const is _NOTHING and self._is_foldable(node):
            try:
                const = fn({})
            except _EvalError as exc:
                self.fail(str(exc), node)
            except (TypeError, ValueError, ArithmeticError, KeyError, IndexError) as exc:
                self.fail(f"{type(exc).__name__}: {exc}", node)
            value = const
            fn = lambda s: value  # noqa: E731
            self.irs[id(node)] = ("const", value)
        elif const is not _NOTHING:
            self.irs[id(node)] = ("const", const)
        return fn, const

    def _is_foldable(self, node: ast.expr) -> bool:
        return isinstance(
            node, ast.BinOp | ast.UnaryOp | ast.BoolOp | ast.Compare | ast.IfExp
        ) and all(
            self._const_tree(c) for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr)
        )

    def _const_tree(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.List | ast.Tuple):
            return all(self._const_tree(e) for e in node.elts)
        if isinstance(node, ast.BinOp | ast.UnaryOp | ast.BoolOp | ast.Compare | ast.IfExp):
            return all(
                self._const_tree(c) for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr)
            )
        return False

    def _compile(self, node: ast.expr) -> tuple[_Fn, Any]:
        kind = type(node)
        if kind in _REJECTED_NODES:
            self.fail(f"{_REJECTED_NODES[kind]} is not allowed in a condition", node)
        if isinstance(node, ast.Constant):
            value = node.value
            if value is not None and not isinstance(value, bool | int | float | str):
                self.fail(f"a {type(value).__name__} literal is not allowed", node)
            return (lambda s: value), value
        if isinstance(node, ast.Name | ast.Attribute | ast.Subscript):
            return self._read(node), _NOTHING
        if isinstance(node, ast.Call):
            return self._call(node), _NOTHING
        if isinstance(node, ast.BoolOp):
            return self._boolop(node), _NOTHING
        if isinstance(node, ast.UnaryOp):
            return self._unary(node), _NOTHING
        if isinstance(node, ast.BinOp):
            op = type(node.op)
            if op not in _BINOPS:
                self.fail(f"the operator {_OP_NAMES.get(op, op.__name__)!r} is not allowed", node)
            left = self.compile(node.left)[0]
            right = self.compile(node.right)[0]
            fn2 = _BINOPS[op]
            self.irs[id(node)] = ("bin", _BIN_NAMES[op], self.ir(node.left), self.ir(node.right))
            return (lambda s: fn2(left(s), right(s))), _NOTHING
        if isinstance(node, ast.Compare):
            return self._compare(node), _NOTHING
        if isinstance(node, ast.IfExp):
            test = self.compile(node.test)[0]
            body = self.compile(node.body)[0]
            orelse = self.compile(node.orelse)[0]
            self.irs[id(node)] = ("if", *(self.ir(n) for n in (node.test, node.body, node.orelse)))
            return (lambda s: body(s) if test(s) else orelse(s)), _NOTHING
        if isinstance(node, ast.List | ast.Tuple):
            items = [self.compile(e) for e in node.elts]
            if all(c is not _NOTHING for _, c in items):
                items_value = tuple(c for _, c in items)
                return (lambda s: items_value), items_value
            fns = [f for f, _ in items]
            self.irs[id(node)] = ("tuple", tuple(self.ir(e) for e in node.elts))
            return (lambda s: tuple(f(s) for f in fns)), _NOTHING
        self.fail(f"{type(node).__name__} syntax is not allowed in a condition", node)

    def _root(self, node: ast.Name) -> str:
        name = node.id
        if name == _GLOBAL_SPELLING:
            name = "global"
        if name in FUNCTIONS and name not in self.inputs:
            self.fail(f"the function {name!r} can only be called, as {name}(...)", node)
        if name in self.inputs:
            pass
        elif name in _SIGNAL_ROOTS:
            name = "signal"
        elif self.namespaces is not None and name not in self.namespaces:
            known = sorted({*self.namespaces, *self.inputs, "signal"})
            self.fail(f"unknown name {name!r} (known: {', '.join(known)})", node)
        self.roots.add(name)
        return name

    def _source(self, node: ast.AST) -> str:
        try:
            return ast.unparse(node).replace(_GLOBAL_SPELLING, "global")
        except Exception:  # pragma: no cover - unparse of a checked tree
            return self.text

    def _read(self, node: ast.expr) -> _Fn:
        # a chain of constant-key reads from a root name compiles to one closure
        keys: list[Any] = []
        cur: ast.expr = node
        while True:
            if isinstance(cur, ast.Attribute):
                self._check_attr(cur)
                keys.append("global" if cur.attr == _GLOBAL_SPELLING else cur.attr)
                cur = cur.value
            elif (
                isinstance(cur, ast.Subscript)
                and isinstance(cur.slice, ast.Constant)
                and isinstance(cur.slice.value, str | int)
                and not isinstance(cur.slice.value, bool)
            ):
                keys.append(cur.slice.value)
                cur = cur.value
            else:
                break
        if isinstance(cur, ast.Name):
            root = self._root(cur)
            keys.reverse()
            text = root + "".join(
                f".{k}" if isinstance(k, str) and k.isidentifier() else f"[{k!r}]" for k in keys
            )
            dotted = ".".join([root, *(str(k) for k in keys)])
            if dotted not in self.reads:
                self.reads.append(dotted)
            self.irs[id(node)] = ("read", root, tuple(keys))
            return _path(root, tuple(keys), text)
        # something else at the bottom of the chain: one step at a time
        if isinstance(node, ast.Attribute):
            self._check_attr(node)
            if self._is_literal(node.value):
                self.fail("attributes can only be read from state values, not from a literal", node)
            base = self.compile(node.value)[0]
            key = "global" if node.attr == _GLOBAL_SPELLING else node.attr
            self.irs[id(node)] = ("index", self.ir(node.value), ("const", key))
            return _index(base, lambda s: key, lambda: self._source(node))
        if isinstance(node, ast.Subscript):
            if isinstance(node.slice, ast.Slice):
                self.fail("a slice is not allowed in a condition", node)
            if self._is_literal(node.value) and not isinstance(node.value, ast.List | ast.Tuple):
                self.fail("indexing a literal is not allowed", node)
            base = self.compile(node.value)[0]
            key_fn = self.compile(node.slice)[0]
            self.irs[id(node)] = ("index", self.ir(node.value), self.ir(node.slice))
            return _index(base, key_fn, lambda: self._source(node))
        root = self._root(node)  # type: ignore[arg-type]
        self.irs[id(node)] = ("read", root, ())
        return _path(root, (), root)

    def _is_literal(self, node: ast.expr) -> bool:
        return isinstance(node, ast.Constant | ast.List | ast.Tuple)

    def _check_attr(self, node: ast.Attribute) -> None:
        attr = node.attr
        at = getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None)
        pos = (
            (at[0], max(at[1] - len(attr), 0)) if at[0] is not None and at[1] is not None else None
        )
        if attr.startswith("_") and attr != _GLOBAL_SPELLING:
            self.fail(f"the attribute {attr!r} is not allowed", at=pos)
        if attr in RESERVED_ATTRIBUTES:
            hint = (
                "call it as .get(key, default)"
                if attr == "get"
                else f"read a key of that name as [{attr!r}]"
            )
            self.fail(f"the attribute {attr!r} is reserved; {hint}", at=pos)

    def _call(self, node: ast.Call) -> _Fn:
        if node.keywords:
            self.fail("keyword arguments are not allowed in a call", node)
        func = node.func
        if isinstance(func, ast.Name) and func.id in FUNCTIONS and func.id not in self.inputs:
            lo, hi = FUNCTIONS[func.id]
            n = len(node.args)
            if n < lo or (hi is not None and n > hi):
                want = f"{lo}" if lo == hi else f"at least {lo}"
                self.fail(f"{func.id}() takes {want} argument(s), not {n}", node)
            args = [self.compile(a)[0] for a in node.args]
            target = _FUNCS[func.id]
            self.irs[id(node)] = ("call", func.id, tuple(self.ir(a) for a in node.args))
            if func.id == "int":
                (a0,) = args

                def to_int(s: Mapping[str, Any]) -> Any:
                    value = a0(s)
                    if isinstance(value, str) and len(value) > 1000:
                        raise _EvalError("int() of a string longer than 1000 characters")
                    return _check_int(int(value))

                return to_int
            if func.id == "str":
                (a0,) = args

                def to_str(s: Mapping[str, Any]) -> Any:
                    value = a0(s)
                    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
                        raise _EvalError("str() of an integer that is too large")
                    return str(value)

                return to_str
            if len(args) == 1:
                (a0,) = args
                return lambda s: target(a0(s))
            return lambda s: target(*[a(s) for a in args])
        if isinstance(func, ast.Attribute) and func.attr == "get":
            if not 1 <= len(node.args) <= 2:
                self.fail(f".get() takes 1 or 2 arguments, not {len(node.args)}", node)
            if self._is_literal(func.value):
                self.fail(".get() can only be called on a state map", node)
            base = self.compile(func.value)[0]
            key, key_const = self.compile(node.args[0])
            default, default_const = (
                self.compile(node.args[1]) if len(node.args) == 2 else (None, None)
            )
            self.irs[id(node)] = (
                "get",
                self.ir(func.value),
                self.ir(node.args[0]),
                self.ir(node.args[1]) if len(node.args) == 2 else ("const", None),
            )
            const = None
            if key_const is not _NOTHING and default_const is not _NOTHING:
                const = (key_const, default_const)
            # a constant-key .get on a root-based read is a static read too
            if isinstance(node.args[0], ast.Constant) and isinstance(
                func.value, ast.Name | ast.Attribute | ast.Subscript
            ):
                prefix = self._source(func.value)
                root = prefix.split(".")[0].split("[")[0]
                if root in ("signal", "cmd"):
                    prefix = "signal" + prefix[len(root) :]
                dotted = f"{prefix}.{node.args[0].value!s}"
                if dotted not in self.reads:
                    self.reads.append(dotted)
            return _get(base, key, default, lambda: self._source(node), const)
        if isinstance(func, ast.Attribute):
            self.fail(
                f"calling the method {func.attr!r} is not allowed (only .get(key, default))", node
            )
        if isinstance(func, ast.Name):
            allowed = ", ".join(FUNCTIONS)
            self.fail(f"calling {func.id!r} is not allowed (allowed: {allowed}, .get)", node)
        self.fail("only named functions can be called", node)

    def _boolop(self, node: ast.BoolOp) -> _Fn:
        fns = [self.compile(v)[0] for v in node.values]
        kind = "and" if isinstance(node.op, ast.And) else "or"
        self.irs[id(node)] = (kind, tuple(self.ir(v) for v in node.values))
        if isinstance(node.op, ast.And):
            if len(fns) == 2:
                a, b = fns
                return lambda s: a(s) and b(s)
            if len(fns) == 3:
                a, b, c = fns
                return lambda s: a(s) and b(s) and c(s)

            def all_of(s: Mapping[str, Any]) -> Any:
                value: Any = True
                for f in fns:
                    value = f(s)
                    if not value:
                        return value
                return value

            return all_of
        if len(fns) == 2:
            a, b = fns
            return lambda s: a(s) or b(s)
        if len(fns) == 3:
            a, b, c = fns
            return lambda s: a(s) or b(s) or c(s)

        def any_of(s: Mapping[str, Any]) -> Any:
            value: Any = False
            for f in fns:
                value = f(s)
                if value:
                    return value
            return value

        return any_of

    def _unary(self, node: ast.UnaryOp) -> _Fn:
        operand = self.compile(node.operand)[0]
        unary = {ast.Not: "not", ast.USub: "neg", ast.UAdd: "pos"}.get(type(node.op))
        if unary is not None:
            self.irs[id(node)] = (unary, self.ir(node.operand))
        if isinstance(node.op, ast.Not):
            return lambda s: not operand(s)
        if isinstance(node.op, ast.USub):
            return lambda s: -operand(s)
        if isinstance(node.op, ast.UAdd):
            return lambda s: +operand(s)
        op = type(node.op)
        self.fail(f"the operator {_OP_NAMES.get(op, op.__name__)!r} is not allowed", node)

    def _compare(self, node: ast.Compare) -> _Fn:
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.Is | ast.IsNot) and not (
                isinstance(right, ast.Constant)
                and (right.value is None or isinstance(right.value, bool))
            ):
                self.fail("'is' / 'is not' compare only with None, True or False", node)
        self._warn_string_bools(node)
        left_fn, _ = self.compile(node.left)
        compiled = [self.compile(c) for c in node.comparators]
        self.irs[id(node)] = (
            "cmp",
            tuple(_CMP_NAMES[type(o)] for o in node.ops),
            tuple(self.ir(n) for n in (node.left, *node.comparators)),
        )
        if len(node.ops) == 1:
            right_fn, right_const = compiled[0]
            op_type: type[ast.AST] = type(node.ops[0])
            if right_const is not _NOTHING:
                return _cmp_const(op_type, left_fn, right_const)
            return _cmp2(op_type, left_fn, right_fn)
        ops = [_CMPOPS[type(o)] for o in node.ops]
        rights = [f for f, _ in compiled]

        def chain(s: Mapping[str, Any]) -> Any:
            a = left_fn(s)
            for fn, right in zip(ops, rights, strict=True):
                b = right(s)
                if not fn(a, b):
                    return False
                a = b
            return True

        return chain

    def _warn_string_bools(self, node: ast.Compare) -> None:
        operands = [node.left, *node.comparators]
        strings = [
            o.value
            for o in operands
            if isinstance(o, ast.Constant) and o.value in ("True", "False")
        ]
        reads_signal = bool(strings) and any(
            isinstance(n, ast.Name) and n.id in _SIGNAL_ROOTS for o in operands for n in ast.walk(o)
        )
        if reads_signal and strings:
            line, column = self.position(node.lineno, node.col_offset)
            _log.warning(
                "%s:%s:%s: condition %r compares a signal with the string %r; signals are "
                "typed in this version (write `== %s` or test the value itself)",
                self.file or "<workflow>",
                line,
                column,
                self.text,
                strings[0],
                strings[0],
            )


def _default_position(
    line: int | None, column: int | None
) -> Callable[[int, int], tuple[int | None, int | None]]:
    def position(row: int, col: int) -> tuple[int | None, int | None]:
        if line is None:
            return None, None
        if row == 1:
            return line, (column or 1) + col
        return line + row - 1, col + 1

    return position


def compile_expression(
    text: str,
    *,
    file: str | None = None,
    line: int | None = None,
    column: int | None = None,
    key_path: str | None = None,
    inputs: Collection[str] = (),
    namespaces: Collection[str] | None = None,
    position: Callable[[int, int], tuple[int | None, int | None]] | None = None,
) -> Expression:
    """Parse, check and compile one expression; raise FluxError naming the location.

    ``line``/``column`` are where the text starts in ``file`` (1-based); ``position``, when
    given, maps a (1-based line, 0-based column) inside the text to the file's (line, column)
    instead. ``inputs`` are the workflow's input names; ``namespaces``, when given, are the
    only other root names accepted (``global``, ``signal`` and ``cmd`` aside); ``None``
    accepts any name as a namespace and leaves the check to evaluation.
    """
    if not isinstance(text, str):
        raise TypeError(f"an expression must be a str, not {type(text).__name__}")
    for name in inputs:
        if (
            name in _SIGNAL_ROOTS
            or name == "global"
            or name in FUNCTIONS
            or keyword.iskeyword(name)
            or (namespaces is not None and name in namespaces)
        ):
            raise FluxError(
                f"the input name {name!r} is taken by a namespace, a function or a keyword",
                file,
                line,
                column,
                key_path,
            )
    names = set(namespaces) | {"global"} if namespaces is not None else None
    compiler = _Compiler(
        text,
        position or _default_position(line, column),
        file,
        key_path,
        inputs,
        names,
    )
    tree = compiler.parse()
    compiler.check_shape(tree)
    fn, _ = compiler.compile(tree)
    ir = compiler.ir(tree)
    first = compiler.position(1, 0)
    return Expression(
        text=text,
        file=file,
        line=first[0] if first[0] is not None else line,
        column=first[1] if first[1] is not None else column,
        key_path=key_path,
        reads=tuple(compiler.reads),
        roots=frozenset(compiler.roots),
        ir=ir,
        _fn=fn,
    )
