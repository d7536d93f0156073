"""Type Shield (spec/16-type-shield.md): Pydantic v2 models checked before every commit.

:class:`SchemaStage` is the pipeline stage ``schema``. It compiles the schema once into a tree of
nodes (one per annotation shape, each with one precompiled pydantic validator) and, per commit,
validates only the changed paths: per change a dict lookup of the path's target plus one
validator call. Values are validated in pydantic's strict mode and never converted.
"""

from __future__ import annotations

import collections.abc
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin

from .errors import SchemaViolationError
from .paths import Path, format_path
from .pipeline import Change, Changes, Stage
from .zones import Zone, zone_of_key

__all__ = ["AppendOnly", "Immutable", "Mutable", "SchemaStage", "ZoneOverride"]


class ZoneOverride:
    """A per-field zone override marker (spec/16), used as ``typing.Annotated`` metadata."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self) -> str:
        return self.name


AppendOnly = ZoneOverride("AppendOnly")
"""Only appends once the (list) field exists; creating it is allowed."""
Immutable = ZoneOverride("Immutable")
"""No change at or below the field once it exists; creating it is allowed."""
Mutable = ZoneOverride("Mutable")
"""Lifts an ``AppendOnly``/``Immutable`` inherited from an enclosing annotated field."""

_MISSING: Any = object()
_SCALARS = frozenset({int, float, str, bool, bytes, type(None)})
_CACHE_LIMIT = 4096
_UNION_ORIGINS: tuple[Any, ...] = (Union, types.UnionType)
_MAP_ORIGINS: tuple[Any, ...] = (dict, collections.abc.Mapping, collections.abc.MutableMapping)
_LIST_ORIGINS: tuple[Any, ...] = (list, collections.abc.Sequence, collections.abc.MutableSequence)

# node kinds
_MODEL, _DICT, _LIST, _ANY, _LEAF = range(5)


def _pydantic() -> Any:
    try:
        import pydantic
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "a Theus schema needs pydantic v2: pip install 'theus-api[schema]'"
        ) from exc
    return pydantic


def type_text(annotation: Any) -> str:
    """A readable text of an annotation (``int``, ``list[str]``, ``Inner | None``)."""
    if annotation is type(None) or annotation is None:
        return "None"
    if annotation is Any:
        return "Any"
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is typing.Annotated:
        return type_text(args[0])
    if origin in _UNION_ORIGINS:
        return " | ".join(type_text(a) for a in args)
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is not None:
        name = getattr(origin, "__name__", None) or repr(origin).replace("typing.", "")
        if not args:
            return str(name)
        return f"{name}[{', '.join('...' if a is Ellipsis else type_text(a) for a in args)}]"
    if isinstance(annotation, type):
        return annotation.__name__
    return repr(annotation).replace("typing.", "")


def _show(value: Any, limit: int = 80) -> str:
    shown = repr(value)
    if len(shown) <= limit:
        return shown
    half = limit // 2
    return f"{shown[:half]}...{shown[-half:]}"


def _plain(value: Any) -> Any:
    """Plain data of a read-only view (deep copy); any other value as is."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, Mapping):
        to_dict = getattr(value, "to_dict", None)
        return to_dict() if to_dict is not None else value
    to_list = getattr(value, "to_list", None)
    if to_list is not None and isinstance(value, Sequence):
        return to_list()
    return value


def _split(annotation: Any) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` (collecting its metadata) from an annotation."""
    metadata: list[Any] = []
    while get_origin(annotation) is typing.Annotated:
        args = get_args(annotation)
        annotation = args[0]
        metadata[:0] = list(args[1:])
    return annotation, metadata


def _unwrap_optional(annotation: Any) -> Any:
    """``X`` for ``Optional[X]`` / ``X | None`` (Annotated stripped), else the annotation."""
    annotation, _ = _split(annotation)
    if get_origin(annotation) in _UNION_ORIGINS:
        rest = [a for a in get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return _split(rest[0])[0]
    return annotation


def _mentions_set(annotation: Any) -> bool:
    if annotation is set or get_origin(annotation) in (set, collections.abc.MutableSet):
        return True
    return any(_mentions_set(a) for a in get_args(annotation) if a is not Ellipsis)


class _Field:
    """A declared field of a model node: its key, node, whether it is required."""

    __slots__ = ("key", "node", "required")

    def __init__(self, key: str, node: _Node, required: bool) -> None:
        self.key = key
        self.node = node
        self.required = required


class _Node:
    """One annotation shape of the schema, with its precompiled validator."""

    __slots__ = (
        "annotation",
        "child",
        "expected",
        "extra",
        "fields",
        "guarded_below",
        "item_validator",
        "kind",
        "marker",
        "model_name",
        "plain",
        "validator",
    )

    def __init__(self, annotation: Any, marker: ZoneOverride | None) -> None:
        self.annotation = annotation
        self.marker = marker
        self.expected = type_text(annotation)
        self.kind = _LEAF
        self.validator: Any = None
        self.item_validator: Any = None
        self.child: _Node | None = None
        self.fields: dict[str, _Field] = {}
        self.extra = "ignore"
        self.model_name = ""
        self.plain = True
        self.guarded_below = False


class _Target:
    """What a path resolves to: the cached result of one walk."""

    __slots__ = (
        "anchor",
        "below_leaf",
        "fast",
        "forbidden",
        "heavy",
        "marker",
        "node",
        "owner",
        "required",
    )

    def __init__(self) -> None:
        self.node: _Node | None = None  # None: not checked
        self.required = False
        self.owner = ""  # the model declaring the last segment
        self.marker: ZoneOverride | None = None  # effective marker (Mutable -> None)
        self.anchor: Path = ()
        self.forbidden: tuple[Path, str] | None = None  # undeclared under extra='forbid'
        self.below_leaf: tuple[Path, str] | None = None
        self.heavy = False
        self.fast: Any = None  # validate_python of a plain scalar target without rules

    def seal(self) -> _Target:
        """Set :attr:`fast` when a set needs nothing but one validator call."""
        node = self.node
        if (
            node is not None
            and not node.plain
            and not node.guarded_below
            and self.marker is None
            and self.forbidden is None
            and self.below_leaf is None
        ):
            self.fast = node.validator.validate_python
        return self


class _Compiler:
    def __init__(self) -> None:
        self.pydantic = _pydantic()
        self.models: dict[Any, _Node] = {}
        self.nodes: list[_Node] = []

    def validator(self, annotation: Any) -> Any:
        return self.pydantic.TypeAdapter(annotation).validator

    def node(self, annotation: Any, metadata: list[Any], where: str) -> _Node:
        """The node of an annotation (with its Annotated metadata)."""
        annotation, inner_meta = _split(annotation)
        metadata = inner_meta + list(metadata)
        markers = [m for m in metadata if isinstance(m, ZoneOverride)]
        if get_origin(annotation) in _UNION_ORIGINS:  # Optional[Annotated[X, marker]]
            arms = [a for a in get_args(annotation) if a is not type(None)]
            if len(arms) == 1:
                markers += [m for m in _split(arms[0])[1] if isinstance(m, ZoneOverride)]
        if len(markers) > 1:
            raise ValueError(f"schema: {where} has more than one zone marker: {markers}")
        marker = markers[0] if markers else None
        rest = [m for m in metadata if not isinstance(m, ZoneOverride)]
        full = typing.Annotated[(annotation, *rest)] if rest else annotation
        if _mentions_set(annotation):
            raise ValueError(
                f"schema: {where} is declared {type_text(annotation)}; the state stores sets "
                "as frozensets (spec/01): declare frozenset[...] instead"
            )
        shape = _unwrap_optional(annotation)
        if marker is AppendOnly and get_origin(shape) not in _LIST_ORIGINS and shape is not list:
            raise ValueError(
                f"schema: {where} is AppendOnly but declared {type_text(annotation)}; "
                "AppendOnly needs a list type"
            )
        model = self.model_node(shape) if self.is_model(shape) else None
        if model is not None and not rest and full is shape and marker is None:
            return model  # a plain model field shares the model's node (recursive models)
        node = _Node(full, marker)
        self.nodes.append(node)
        node.validator = self.validator(full)
        node.plain = shape not in _SCALARS
        if model is not None:
            node.kind = _MODEL
            node.fields, node.extra, node.model_name = model.fields, model.extra, model.model_name
            node.child = model
        elif shape is Any or shape is object:
            node.kind = _ANY
        elif get_origin(shape) in _MAP_ORIGINS:
            node.kind = _DICT
            args = get_args(shape)
            node.child = self.node(args[1] if len(args) == 2 else Any, [], f"{where} values")
        elif get_origin(shape) in _LIST_ORIGINS or shape is list:
            node.kind = _LIST
            args = get_args(shape)
            item = args[0] if args else Any
            node.child = self.node(item, [], f"{where} items")
            node.item_validator = node.child.validator
        return node

    def is_model(self, shape: Any) -> bool:
        """A model walked field by field (a RootModel is validated only whole)."""
        pyd = self.pydantic
        return (
            isinstance(shape, type)
            and issubclass(shape, pyd.BaseModel)
            and not issubclass(shape, pyd.RootModel)
        )

    def model_node(self, model: Any) -> _Node:
        node = self.models.get(model)
        if node is not None:
            return node
        node = _Node(model, None)
        node.kind = _MODEL
        node.model_name = model.__name__
        node.extra = model.model_config.get("extra") or "ignore"
        self.models[model] = node
        self.nodes.append(node)
        node.validator = self.validator(model)
        for name, info in model.model_fields.items():
            key = info.alias if isinstance(info.alias, str) else name
            where = f"field {model.__name__}.{name}"
            child = self.node(info.annotation, list(info.metadata), where)
            _check_marker(key, child.marker, where)
            node.fields[key] = _Field(key, child, info.is_required())
        return node

    def finish(self) -> None:
        """Mark the nodes with a protected path below them (a fixpoint: models may recurse)."""
        changed = True
        while changed:
            changed = False
            for node in self.nodes:
                if node.guarded_below:
                    continue
                if any(_guards(c) for c in _children(node)):
                    node.guarded_below = changed = True


def _children(node: _Node) -> list[_Node]:
    if node.kind == _MODEL:
        return [f.node for f in node.fields.values()]
    if node.kind in (_DICT, _LIST) and node.child is not None:
        return [node.child]
    return []


def _guards(node: _Node) -> bool:
    return node.marker is AppendOnly or node.marker is Immutable or node.guarded_below


def _check_marker(key: str, marker: ZoneOverride | None, where: str) -> None:
    if marker is None:
        return
    zone = zone_of_key(key)
    if zone in (Zone.SIGNAL, Zone.HEAVY) or (zone is Zone.LOG and marker is Mutable):
        raise ValueError(
            f"schema: {where} ({key!r}, {zone.value} zone) cannot carry {marker}: prefix zones "
            "(spec/03) are enforced by the backends and a schema cannot loosen them"
        )


def _root_of(schema: Any, compiler: _Compiler) -> _Node:
    if compiler.is_model(schema):
        return compiler.model_node(schema)
    if isinstance(schema, Mapping):
        root = _Node(object, None)
        root.kind = _MODEL
        root.model_name = "the schema"
        for key, model in schema.items():
            if not isinstance(key, str):
                raise TypeError(f"schema mapping keys must be namespace names (str), not {key!r}")
            if not compiler.is_model(model):
                raise TypeError(
                    f"schema[{key!r}] must be a pydantic BaseModel subclass (not a RootModel), "
                    f"not {model!r}"
                )
            root.fields[key] = _Field(key, compiler.model_node(model), False)
        compiler.nodes.append(root)
        return root
    raise TypeError(
        "schema=...: expected a pydantic BaseModel subclass (not a RootModel) or a mapping "
        "{namespace: model}, "
        f"got {_show(schema)} ({type(schema).__name__})"
    )


def _violation(
    path: Path, message: str, expected: str, value: Any, errors: list[Any] | None = None
) -> SchemaViolationError:
    return SchemaViolationError(f"schema: {message}", format_path(path), expected, value, errors)


class SchemaStage(Stage):
    """The pipeline stage checking commits against a schema (spec/16).

    ``schema``: a Pydantic v2 model class of the whole context, or a mapping
    ``{namespace: ModelClass}``. ``TypeError`` for anything else, ``ValueError`` for a marker
    the zones forbid or a ``set[...]`` annotation.
    """

    name = "schema"

    def __init__(self, schema: Any) -> None:
        compiler = _Compiler()
        self.schema = schema
        self._root = _root_of(schema, compiler)
        compiler.finish()
        self._cache: dict[Path, _Target] = {}
        # the paths whose set needs one validator call and nothing else (a subset of _cache);
        # handed to backends by native_plan: cleared, never replaced
        self._fast: dict[Path, Any] = {}
        self._validation_error: type[Exception] = compiler.pydantic.ValidationError

    def native_plan(self) -> tuple[dict[Path, Any], type[Exception]] | None:
        """The stage's native plan (spec/16, Native plan): ``(table, error_class)``.

        ``table`` is the stage's live dict from a path to the ``validate_python`` of a path
        whose ``set`` needs that one call and nothing else (filled as commits resolve paths);
        ``error_class`` is pydantic's ``ValidationError``. A backend may call
        ``table[path](value, strict=True)`` for a commit made only of such sets instead of
        :meth:`before_commit`, and calls :meth:`before_commit` when one raises ``error_class``.
        ``None`` for a subclass that overrides :meth:`before_commit`.
        """
        if type(self).before_commit is not SchemaStage.before_commit:
            return None
        return self._fast, self._validation_error

    # -- resolution --------------------------------------------------------------------------
    def _target(self, path: Path) -> _Target:
        target = self._cache.get(path)
        if target is None:
            target = self._walk(path)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
                self._fast.clear()
            self._cache[path] = target
            if target.fast is not None:
                self._fast[path] = target.fast
        return target

    def _walk(self, path: Path) -> _Target:
        target = _Target()
        node: _Node | None = self._root
        marker: ZoneOverride | None = None
        anchor: Path = ()
        for i, segment in enumerate(path):
            if zone_of_key(segment) is Zone.HEAVY:
                target.heavy = True
            here = path[: i + 1]
            if node is None:
                continue
            if node.kind == _MODEL:
                field = node.fields.get(segment)
                if field is None:
                    if node.extra == "forbid":
                        target.forbidden = (here, node.model_name)
                    node = None
                    continue
                target.required, target.owner = field.required, node.model_name
                node = field.node
            elif node.kind in (_DICT, _LIST):
                target.required = False
                node = node.child
            elif node.kind == _ANY:
                node = None
                continue
            else:  # a leaf: checked only whole
                target.below_leaf = (path[:i], node.expected)
                node = None
                continue
            assert node is not None
            if node.marker is not None:
                marker = None if node.marker is Mutable else node.marker
                anchor = here
        target.node = node
        target.marker = marker
        target.anchor = anchor
        return target.seal()

    # -- the check ---------------------------------------------------------------------------
    def before_commit(self, changes: Changes) -> None:
        """Validate every change of the commit; raise :class:`SchemaViolationError` on the
        first that breaks the schema."""
        fast_of = self._fast
        try:  # the tuple itself: Changes.__iter__ is a Python-level call
            items: Sequence[Change] = changes._items
        except AttributeError:  # another Sequence of Change
            items = changes
        for change in items:
            kind, path, value = change
            fast = fast_of.get(path)
            if fast is not None and kind == "set":  # a scalar field, no rule: one call
                try:
                    fast(value, strict=True)
                    continue
                except self._validation_error:
                    pass  # the full check below raises with the message
            self._check(change, self._target(path), changes.base)

    def _check(self, change: Change, target: _Target, base: Any) -> None:
        """The full check of one change."""
        node = target.node
        if target.forbidden is not None or target.below_leaf is not None:
            self._structural(change, target)
        if target.marker is not None:
            self._zone(change, target, base)
        if node is None:
            return
        kind = change.kind
        if kind == "set":
            value = change.value
            if node.plain and not target.heavy:
                value = _plain(value)
            try:
                node.validator.validate_python(value, strict=True)
            except self._validation_error as exc:
                raise self._invalid(change.path, node, value, exc) from None
            if node.guarded_below:
                self._above(change.path, node, base, value)
        elif kind == "append":
            self._append(change, node, base)
        else:
            if target.required:
                raise _violation(
                    change.path,
                    f"'{change.dotted}' is required by {target.owner} and cannot be deleted",
                    node.expected,
                    None,
                )
            if node.guarded_below:
                self._above(change.path, node, base, _MISSING)

    def _structural(self, change: Change, target: _Target) -> None:
        if target.forbidden is not None:
            where, model = target.forbidden
            raise _violation(
                change.path,
                f"'{format_path(where)}' is not declared by {model} (extra='forbid')",
                "declared field",
                None if change.kind == "delete" else _plain(change.value),
            )
        if target.below_leaf is not None:
            where, expected = target.below_leaf
            raise _violation(
                change.path,
                f"'{change.dotted}' is below '{format_path(where)}' ({expected}), which the "
                f"schema checks only whole; write '{format_path(where)}' whole",
                expected,
                None if change.kind == "delete" else _plain(change.value),
            )

    def _zone(self, change: Change, target: _Target, base: Any) -> None:
        marker = target.marker
        anchor = target.anchor
        if base.get(format_path(anchor), _MISSING) is _MISSING:
            return  # creating the protected path is allowed
        if marker is AppendOnly and change.kind == "append" and change.path == anchor:
            return
        what = "only appends are allowed" if marker is AppendOnly else "it exists already"
        raise _violation(
            change.path,
            f"'{change.dotted}' is {marker} (at '{format_path(anchor)}'): "
            f"{change.kind} refused, {what}",
            str(marker),
            None if change.kind == "delete" else _plain(change.value),
        )

    def _append(self, change: Change, node: _Node, base: Any) -> None:
        items = tuple(change.value)
        if node.kind == _LIST:
            item_node = node.child
            assert item_node is not None
            for i, item in enumerate(items):
                value = _plain(item) if item_node.plain else item
                try:
                    item_node.validator.validate_python(value, strict=True)
                except self._validation_error as exc:
                    raise self._invalid(change.path, item_node, value, exc, appended=i) from None
            return
        if node.kind == _ANY:
            return
        whole = list(_plain(base.get(change.dotted, []))) + [_plain(i) for i in items]
        try:
            node.validator.validate_python(whole, strict=True)
        except self._validation_error as exc:
            raise self._invalid(change.path, node, whole, exc) from None

    def _invalid(
        self, path: Path, node: _Node, value: Any, exc: Any, appended: int | None = None
    ) -> SchemaViolationError:
        errors = exc.errors(include_url=False)
        value = _plain(value)
        what = "an appended item of" if appended is not None else ""
        head = f"{what} '{format_path(path)}'".strip()
        message = f"{head} expects {node.expected}, got {_show(value)} ({type(value).__name__})"
        if errors:
            first = errors[0]
            loc = ".".join(str(part) for part in first.get("loc", ()))
            plain_type = not loc and first.get("type", "").endswith("_type")
            if not plain_type:
                at = f"at '{loc}': " if loc else ""
                message += f": {at}{first.get('msg', '')}"
        return _violation(path, message, node.expected, value, errors)

    def _above(self, path: Path, node: _Node, base: Any, new: Any) -> None:
        old = base.get(format_path(path), _MISSING)
        if old is _MISSING:
            return
        _compare(path, path, node, _plain(old), new)


def _lookup(container: Any, key: str) -> Any:
    if container is _MISSING:
        return _MISSING
    if isinstance(container, Mapping):
        return container.get(key, _MISSING)
    if isinstance(container, list):
        index = int(key)
        return container[index] if 0 <= index < len(container) else _MISSING
    return _MISSING


def _compare(written: Path, path: Path, node: _Node, old: Any, new: Any) -> None:
    """Check that a write at ``written`` keeps every protected path below ``path``."""
    for key, child in _guarded_children(node, old):
        old_value = _lookup(old, key)
        if old_value is _MISSING:
            continue
        new_value = _lookup(new, key)
        here = (*path, key)
        marker = child.marker
        if marker is Immutable or marker is AppendOnly:
            if marker is Immutable:
                kept = new_value is not _MISSING and new_value == old_value
            else:
                kept = (
                    isinstance(new_value, list)
                    and isinstance(old_value, list)
                    and new_value[: len(old_value)] == old_value
                )
            if not kept:
                verb = "remove" if new_value is _MISSING else "change"
                raise _violation(
                    written,
                    f"writing '{format_path(written)}' would {verb} '{format_path(here)}', "
                    f"which is {marker}",
                    str(marker),
                    None if new is _MISSING else new,
                )
        elif child.guarded_below:
            _compare(written, here, child, old_value, new_value)


def _guarded_children(node: _Node, old: Any) -> list[tuple[str, _Node]]:
    if node.kind == _MODEL:
        return [(f.key, f.node) for f in node.fields.values() if _guards(f.node)]
    child = node.child
    if child is None or not _guards(child):
        return []
    if node.kind == _DICT and isinstance(old, Mapping):
        return [(str(k), child) for k in old]
    if node.kind == _LIST and isinstance(old, list):
        return [(str(i), child) for i in range(len(old))]
    return []
