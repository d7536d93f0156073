"""``@process`` and the process contract (spec/04-processes-and-contracts.md)."""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import Any, TypeVar, overload

from . import messages
from .errors import ContractViolationError, InvalidContractError
from .paths import Path, Pattern, format_path, parse_pattern
from .retry import RetryPolicy
from .zones import Zone, zone_of

__all__ = [
    "EXECUTOR_NAMES",
    "Contract",
    "ProcessSpec",
    "Semantic",
    "SemanticType",
    "process",
    "spec_of",
    "validate_contract",
]

F = TypeVar("F", bound=Callable[..., Any])


class Semantic(str, enum.Enum):
    """What a process is allowed to be (spec/04)."""

    PURE = "pure"
    EFFECT = "effect"
    GUIDE = "guide"


SemanticType = Semantic
"""Theus 3's name of :class:`Semantic` (spec/19)."""

#: Theus 3 spellings of the namespaces in patterns (spec/19): ``domain_ctx.x`` is ``domain.x``.
NAMESPACE_ALIASES = {"domain_ctx": "domain", "global_ctx": "global", "global_": "global"}

#: the executor names ``@process(executor=...)`` and ``TheusEngine(executor=...)`` accept
EXECUTOR_NAMES = ("processes", "threads", "subinterpreters")

#: Theus 3's zone roots used as namespaces: what to write instead (spec/19).
_ZONE_NAMESPACE_HINTS = {
    "heavy": "; Theus 3's 'heavy.x' is a key with the heavy_ prefix here: 'domain.heavy_x'",
    "signal": "; Theus 3's 'signal.x' is a key with the sig_ prefix here: 'domain.sig_x'",
    "meta": "; Theus 3's 'meta.x' is a key with the meta_ prefix here: 'domain.meta_x'",
}


@dataclass(frozen=True)
class ProcessSpec:
    """Everything the engine knows about a process, attached as ``fn.__theus_process__``."""

    name: str
    func: Callable[..., Any]
    inputs: tuple[Pattern, ...]
    outputs: tuple[Pattern, ...]
    semantic: Semantic = Semantic.EFFECT
    retries: int = 3
    cpu_heavy: bool = False
    is_async: bool = False
    #: Theus 3's ``errors=`` and ``side_effects=``: kept as metadata, never checked (spec/19)
    errors: tuple[str, ...] = ()
    side_effects: tuple[str, ...] = ()
    #: runs on a worker, outside the caller's interpreter (spec/22)
    parallel: bool = False
    #: the executor of a parallel process: a name of :data:`EXECUTOR_NAMES`, a
    #: ``concurrent.futures.Executor``, or None for the engine's default (spec/22)
    executor: Any = None

    def contract(self) -> Contract:
        """The compiled contract (coverage with caches)."""
        return Contract(self)

    @property
    def retry_policy(self) -> RetryPolicy:
        """How this process is re-run after a conflict (spec/05)."""
        return RetryPolicy(self.retries)


def _patterns(value: object, where: str) -> tuple[Pattern, ...]:
    if isinstance(value, str | bytes):
        raise InvalidContractError(
            f"{where} must be a list of pattern strings, not the single {type(value).__name__} "
            f"{value!r} (did you mean [{value!r}]?)"
        )
    if not isinstance(value, Iterable):
        raise TypeError(
            f"{where} must be a list of pattern strings, not {type(value).__name__} {value!r}"
        )
    return tuple(parse_pattern(_canonical(p), where=where) for p in value)


def _canonical(text: object) -> object:
    """``text`` with a Theus 3 namespace alias replaced (``domain_ctx.x`` -> ``domain.x``)."""
    if isinstance(text, str):
        head, dot, rest = text.partition(".")
        alias = NAMESPACE_ALIASES.get(head)
        if alias is not None:
            return alias + dot + rest
    return text


def _names(value: object, label: str, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"process {label!r}: {what} must be a list of str, not {value!r}")
    names = tuple(value)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"process {label!r}: {what} must be a list of str, not {value!r}")
    return names


def _make_spec(
    fn: Callable[..., Any],
    *,
    inputs: Iterable[str],
    outputs: Iterable[str],
    semantic: Semantic | str,
    retries: int,
    cpu_heavy: bool,
    name: str | None,
    errors: Iterable[str] | None = None,
    side_effects: Iterable[str] | None = None,
    parallel: bool = False,
    executor: Any = None,
) -> ProcessSpec:
    if not callable(fn):
        raise TypeError(f"@process expects a function, not {type(fn).__name__}")
    label = name if name is not None else getattr(fn, "__name__", repr(fn))
    if not isinstance(label, str) or not label:
        raise TypeError(f"process name must be a non-empty str, not {label!r}")
    if not isinstance(semantic, str):
        raise TypeError(
            f"process {label!r}: semantic must be a str or Semantic, not {type(semantic).__name__}"
        )
    try:
        sem = Semantic(semantic)
    except ValueError:
        raise InvalidContractError(
            f"process {label!r}: semantic must be one of 'pure', 'effect', 'guide', "
            f"not {semantic!r}"
        ) from None
    if isinstance(retries, bool) or not isinstance(retries, int):
        raise TypeError(f"process {label!r}: retries must be an int, not {retries!r}")
    if retries < 0:
        raise InvalidContractError(
            f"process {label!r}: retries must be an int >= 0, not {retries!r}"
        )
    if not isinstance(cpu_heavy, bool):
        raise TypeError(f"process {label!r}: cpu_heavy must be a bool, not {cpu_heavy!r}")
    if not isinstance(parallel, bool):
        raise TypeError(f"process {label!r}: parallel must be a bool, not {parallel!r}")
    check_executor(executor, f"process {label!r}: executor")
    if executor is not None:
        parallel = True
    is_async = inspect.iscoroutinefunction(fn)
    if parallel and is_async:
        raise TypeError(
            f"process {label!r}: a parallel process must be a plain def, not async def "
            "(its worker runs it synchronously); drop parallel=/executor= or make it sync"
        )
    return ProcessSpec(
        name=label,
        func=fn,
        inputs=_patterns(inputs, f"process {label!r}: inputs"),
        outputs=_patterns(outputs, f"process {label!r}: outputs"),
        semantic=sem,
        retries=retries,
        cpu_heavy=cpu_heavy,
        is_async=is_async,
        errors=_names(errors, label, "errors"),
        side_effects=_names(side_effects, label, "side_effects"),
        parallel=parallel,
        executor=executor,
    )


def check_executor(executor: Any, where: str) -> None:
    """``TypeError``/``ValueError`` unless ``executor`` is None, a name of
    :data:`EXECUTOR_NAMES` or a ``concurrent.futures.Executor`` (spec/22)."""
    if executor is None or isinstance(executor, Executor):
        return
    if isinstance(executor, str):
        if executor not in EXECUTOR_NAMES:
            raise ValueError(
                f"{where} must be one of {list(EXECUTOR_NAMES)} or a "
                f"concurrent.futures.Executor, not {executor!r}"
            )
        return
    raise TypeError(
        f"{where} must be one of {list(EXECUTOR_NAMES)} or a concurrent.futures.Executor, "
        f"not {type(executor).__name__} {executor!r}"
    )


@overload
def process(fn: F, /) -> F: ...
@overload
def process(
    *,
    inputs: Iterable[str] = (),
    outputs: Iterable[str] = (),
    semantic: Semantic | str = Semantic.EFFECT,
    retries: int = 3,
    cpu_heavy: bool = False,
    name: str | None = None,
    errors: Iterable[str] | None = None,
    side_effects: Iterable[str] | None = None,
    parallel: bool = False,
    executor: Any = None,
) -> Callable[[F], F]: ...
def process(
    fn: Any = None,
    /,
    *,
    inputs: Iterable[str] = (),
    outputs: Iterable[str] = (),
    semantic: Semantic | str = Semantic.EFFECT,
    retries: int = 3,
    cpu_heavy: bool = False,
    name: str | None = None,
    errors: Iterable[str] | None = None,
    side_effects: Iterable[str] | None = None,
    parallel: bool = False,
    executor: Any = None,
) -> Any:
    """Declare a process: the paths it reads (``inputs``) and may write (``outputs``).

    Usable bare (``@process``) or with arguments. Returns the function itself with its
    :class:`ProcessSpec` attached as ``fn.__theus_process__``::

        @process(inputs=["domain.balance"], outputs=["domain.balance"])
        def deposit(ctx, amount: int) -> None:
            ctx.domain.balance += amount

    Theus 3's ``errors=`` and ``side_effects=`` are kept on the spec as metadata (spec/19).
    ``parallel=True`` runs the process on a worker of the engine's executor, ``executor=``
    (``"processes"``, ``"threads"``, ``"subinterpreters"`` or a
    ``concurrent.futures.Executor``) on that one; its declared inputs and outputs are shipped
    as plain data and its writes come back as a delta committed by the usual rules (spec/22).
    """

    def decorate(f: F) -> F:
        spec = _make_spec(
            f,
            inputs=inputs,
            outputs=outputs,
            semantic=semantic,
            retries=retries,
            cpu_heavy=cpu_heavy,
            name=name,
            errors=errors,
            side_effects=side_effects,
            parallel=parallel,
            executor=executor,
        )
        f.__theus_process__ = spec  # type: ignore[attr-defined]
        return f

    if fn is None:
        return decorate
    return decorate(fn)


def spec_of(fn: Callable[..., Any]) -> ProcessSpec:
    """The spec of a decorated function; an undecorated one gets an empty contract."""
    spec = getattr(fn, "__theus_process__", None)
    if isinstance(spec, ProcessSpec):
        # a wrapper made with functools.wraps carries the wrapped function's spec
        return spec if spec.func is fn else replace(spec, func=fn)
    return _make_spec(
        fn, inputs=(), outputs=(), semantic=Semantic.EFFECT, retries=3, cpu_heavy=False, name=None
    )


def validate_contract(spec: ProcessSpec, namespaces: Collection[str]) -> None:
    """Registration-time checks (spec/04): known namespaces, semantic-forbidden paths."""
    readable = spec.inputs + spec.outputs
    for pattern in readable:
        ns = pattern.segments[0]
        if ns not in namespaces:
            hint = _ZONE_NAMESPACE_HINTS.get(ns, "")
            raise InvalidContractError(
                f"process {spec.name!r}: pattern {pattern.text!r} names namespace {ns!r}, "
                f"which this engine does not have (namespaces: {sorted(namespaces)}){hint}"
            )
    for pattern in readable:
        zone = _literal_zone(pattern)
        if spec.semantic is Semantic.PURE and zone is Zone.META:
            raise InvalidContractError(
                f"pure process {spec.name!r} may not name meta path {pattern.text!r}"
            )
    for pattern in spec.outputs:
        zone = _literal_zone(pattern)
        if spec.semantic is Semantic.PURE and zone is Zone.SIGNAL:
            raise InvalidContractError(
                f"pure process {spec.name!r} may not write signal path {pattern.text!r}"
            )
        if (
            spec.semantic is Semantic.GUIDE
            and zone is not None
            and zone not in (Zone.SIGNAL, Zone.META)
        ):
            raise InvalidContractError(
                f"guide process {spec.name!r} may write only signal and meta paths, "
                f"not {pattern.text!r}"
            )


class Contract:
    """A process contract compiled for one engine: coverage answers with a bounded cache.

    ``check_read``/``check_write`` raise :class:`ContractViolationError` naming the path, the
    process and the declared patterns; ``navigable`` tells whether a path leads to a pattern.
    """

    _CACHE_LIMIT = 4096

    def __init__(self, spec: ProcessSpec) -> None:
        self.spec = spec
        self.readable = spec.inputs + spec.outputs
        self.writable = spec.outputs
        self._read_cache: dict[Path, bool] = {}
        self._write_cache: dict[Path, bool] = {}
        self._nav_cache: dict[Path, bool] = {}

    @staticmethod
    def _cached(cache: dict[Path, bool], path: Path, compute: Callable[[], bool]) -> bool:
        hit = cache.get(path)
        if hit is None:
            if len(cache) >= Contract._CACHE_LIMIT:
                cache.clear()
            hit = cache[path] = compute()
        return hit

    def can_read(self, path: Path) -> bool:
        """``path`` is covered by ``inputs ∪ outputs``."""
        return self._cached(
            self._read_cache, path, lambda: any(p.covers(path) for p in self.readable)
        )

    def can_write(self, path: Path) -> bool:
        """``path`` is covered by ``outputs``."""
        return self._cached(
            self._write_cache, path, lambda: any(p.covers(path) for p in self.writable)
        )

    def navigable(self, path: Path) -> bool:
        """Some readable pattern leads to ``path`` (navigation, spec/04 rule 2)."""
        return self._cached(
            self._nav_cache, path, lambda: any(p.leads_to(path) for p in self.readable)
        )

    def read_violation(self, path: Path) -> ContractViolationError:
        """The error for reading ``path`` outside the contract."""
        return ContractViolationError(
            messages.read_outside(
                self.spec.name,
                format_path(path),
                [p.text for p in self.spec.inputs],
                [p.text for p in self.spec.outputs],
            )
        )

    def write_violation(self, path: Path, op: str = "set") -> ContractViolationError:
        """The error for a write (``op``, see :data:`theus.messages.VERBS`) of ``path``
        outside the outputs."""
        return ContractViolationError(
            messages.write_outside(
                self.spec.name, op, format_path(path), [p.text for p in self.writable]
            )
        )


def _literal_zone(pattern: Pattern) -> Zone | None:
    """The zone a pattern names before any wildcard, None if a wildcard comes first."""
    prefix = pattern.literal_prefix
    zone = zone_of(prefix)
    if zone is Zone.DATA and len(prefix) < len(pattern.segments):
        return None  # a wildcard could still reach another zone
    return zone
