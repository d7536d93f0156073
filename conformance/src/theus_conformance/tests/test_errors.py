"""spec/12 — the exception classes, and bad input (REQUIREMENTS §7): a clear error naming the
argument, raised before anything runs, with the state untouched."""

from __future__ import annotations

import queue
import re

import pytest

import theus
from theus import (
    BackendLoadError,
    BackendNotFoundError,
    ConflictError,
    ContextError,
    ContractViolationError,
    FluxError,
    InvalidContractError,
    InvalidPathError,
    NestedExecutionError,
    ProcessNotFoundError,
    SignalEmpty,
    StateUpdate,
    TheusEngine,
    TheusError,
    process,
)

HIERARCHY = {
    "TheusError": (Exception,),
    "ContextError": (TheusError,),
    "InvalidPathError": (TheusError, ValueError),
    "InvalidContractError": (TheusError, ValueError),
    "ContractViolationError": (TheusError, PermissionError),
    "ConflictError": (TheusError,),
    "NestedExecutionError": (TheusError, RuntimeError),
    "ProcessNotFoundError": (TheusError, KeyError),
    "BackendNotFoundError": (TheusError, LookupError),
    "BackendLoadError": (TheusError, ImportError),
    "SignalEmpty": (TheusError, queue.Empty),
    "AuditViolationError": (TheusError,),
    "AuditStopError": (theus.AuditViolationError,),
    "AuditAbortError": (theus.AuditViolationError,),
    "AuditBlockError": (theus.AuditViolationError,),
    "AuditRecipeError": (TheusError, ValueError),
    "WorkerError": (TheusError, RuntimeError),
    "ExecutorUnavailableError": (TheusError, LookupError),
    "BatchError": (TheusError, ExceptionGroup),
}


@pytest.mark.parametrize("name", sorted(HIERARCHY))
def test_error_classes_and_bases(name):
    import theus.errors

    cls = getattr(theus, name)
    assert getattr(theus.errors, name) is cls
    for base in HIERARCHY[name]:
        assert issubclass(cls, base), f"{name} must subclass {base.__name__}"


def test_exported_names_are_the_same_objects():
    assert (
        ContextError,
        InvalidPathError,
        InvalidContractError,
        ContractViolationError,
        ConflictError,
        NestedExecutionError,
        ProcessNotFoundError,
        BackendNotFoundError,
        BackendLoadError,
        SignalEmpty,
    ) == tuple(
        getattr(theus, n)
        for n in (
            "ContextError",
            "InvalidPathError",
            "InvalidContractError",
            "ContractViolationError",
            "ConflictError",
            "NestedExecutionError",
            "ProcessNotFoundError",
            "BackendNotFoundError",
            "BackendLoadError",
            "SignalEmpty",
        )
    )


# ---------------------------------------------------------------------------------------------
# bad input to the engine


@process
def noop(ctx):
    return None


BAD_ENGINE_CALLS = {
    "execute-int": (lambda e: e.execute(123), TypeError, "123|int"),
    "execute-none": (lambda e: e.execute(None), TypeError, "None"),
    "execute-unknown": (
        lambda e: e.execute("no_such_process"),
        ProcessNotFoundError,
        "no_such_process",
    ),
    "register-non-callable": (lambda e: e.register(42), TypeError, "42|int"),
    "cas-version-str": (
        lambda e: e.compare_and_swap("0", data={"domain.x": 1}),
        TypeError,
        "expected_version",
    ),
    "cas-data-list": (lambda e: e.compare_and_swap(0, data=[("domain.x", 1)]), TypeError, "data"),
    "cas-delete-str": (lambda e: e.compare_and_swap(0, delete="domain.x"), TypeError, "delete"),
    "tx-data-int": (lambda e: _in_tx(e, lambda tx: tx.update(data=5)), TypeError, "data"),
    "tx-heavy-list": (lambda e: _in_tx(e, lambda tx: tx.update(heavy=[1])), TypeError, "heavy"),
    "tx-signal-str": (
        lambda e: _in_tx(e, lambda tx: tx.update(signal="domain.sig_x")),
        TypeError,
        "signal",
    ),
    "tx-delete-str": (
        lambda e: _in_tx(e, lambda tx: tx.update(delete="domain.x")),
        TypeError,
        "delete",
    ),
    "tx-key-not-str": (
        lambda e: _in_tx(e, lambda tx: tx.update(data={1: 2})),
        InvalidPathError,
        "1",
    ),
    "tx-bad-path": (
        lambda e: _in_tx(e, lambda tx: tx.update(data={"domain..x": 2})),
        InvalidPathError,
        r"domain\.\.x",
    ),
    "tx-below-scalar": (
        lambda e: _in_tx(e, lambda tx: tx.update(data={"domain.x.y": 2})),
        ContextError,
        "domain.x",
    ),
    "tx-unknown-namespace-delete": (
        lambda e: _in_tx(e, lambda tx: tx.update(delete=["nowhere.x"])),
        KeyError,
        "nowhere",
    ),
    "execute-process-kwargs-mismatch": (
        lambda e: e.execute(noop, surprise=1),
        TypeError,
        "surprise",
    ),
}


def _in_tx(engine, action):
    with engine.transaction() as tx:
        tx.update(data={"domain.touched": True})
        action(tx)


@pytest.mark.parametrize("case", sorted(BAD_ENGINE_CALLS))
def test_bad_input_to_the_engine(make_engine, case):
    call, error, named = BAD_ENGINE_CALLS[case]
    engine = make_engine({"domain": {"x": 1}})
    engine.register(noop)
    rx = engine.signals.subscribe()
    before = engine.state
    with pytest.raises(error) as info:
        call(engine)
    assert re.search(named, str(info.value)), f"the error must name {named!r}: {info.value!r}"
    assert engine.state is before
    with pytest.raises(SignalEmpty):
        rx.try_recv()


BAD_CONSTRUCTIONS = {
    "context-int": ({"context": 3}, TypeError, "context"),
    "namespace-list": ({"context": {"domain": []}}, TypeError, "domain"),
    "strict_guards-str": ({"strict_guards": "yes"}, TypeError, "strict_guards"),
    "backend-int": ({"backend": 5}, TypeError, "backend"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONSTRUCTIONS))
def test_bad_engine_construction(backend, case):
    kwargs, error, named = BAD_CONSTRUCTIONS[case]
    if case == "backend-int":
        # spec/13: an object given as backend= that is not a backend is a BackendLoadError;
        # spec/12: a wrong argument type is a TypeError. Either names the problem.
        error = (TypeError, BackendLoadError)
    kwargs = {"backend": backend, **kwargs}
    with pytest.raises(error, match=named):
        TheusEngine(**kwargs)


def test_state_update_bad_types():
    with pytest.raises(TypeError, match="data"):
        StateUpdate(data=5)
    with pytest.raises(TypeError, match="delete"):
        StateUpdate(delete="domain.x")


# ---------------------------------------------------------------------------------------------
# contracts that cannot match, and features not written yet


def test_contract_that_cannot_match_is_refused_before_running(make_engine):
    engine = make_engine({"domain": {"x": 1}})
    ran = []

    @process(inputs=["domian.x"], outputs=["domain.x"])
    def typo(ctx):
        ran.append(True)

    before = engine.state
    with pytest.raises(InvalidContractError) as info:
        engine.execute(typo)
    assert "domian" in str(info.value)
    assert ran == []
    assert engine.state is before


def test_a_workflow_path_that_does_not_exist_is_a_flux_error(make_engine, backend):
    engine = make_engine()
    with pytest.raises(FluxError, match="steps: \\[\\]"):  # no newline: a file name
        engine.execute_workflow("steps: []")
    with pytest.raises(TypeError, match="schema"):  # spec/16: not a schema
        engine.set_schema(object)
    with pytest.raises(TypeError, match="schema"):
        TheusEngine(backend=backend, schema=object)


@pytest.mark.requires("async")
def test_async_workflow_with_a_missing_file_is_a_flux_error(make_engine):
    import asyncio

    engine = make_engine()
    with pytest.raises(FluxError, match="cannot read the workflow"):
        asyncio.run(engine.aexecute_workflow("no-such-workflow.yaml"))


def test_backend_errors_are_distinct():
    assert not issubclass(BackendNotFoundError, BackendLoadError)
    assert not issubclass(BackendLoadError, BackendNotFoundError)
