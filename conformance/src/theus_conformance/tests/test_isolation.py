"""REQUIREMENTS §4.12 / spec/03 "Isolation" — quiet and isolated: two engines share nothing
mutable; importing and using theus prints nothing and writes nothing into the working dir."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from theus import ContractViolationError, ProcessNotFoundError, process
from theus_conformance.support import drain


def test_two_engines_share_no_registry(make_engine):
    e1, e2 = make_engine(), make_engine()

    @process(name="shared_name")
    def one(ctx):
        return 1

    @process(name="shared_name")
    def two(ctx):
        return 2

    e1.register(one)
    with pytest.raises(ProcessNotFoundError):
        e2.execute("shared_name")
    e2.register(two)  # same name, other engine: no clash
    assert e1.execute("shared_name") == 1
    assert e2.execute("shared_name") == 2


def test_two_engines_share_no_rules(make_engine):
    lax = make_engine({"domain": {"secret": 1}}, strict_guards=False)
    strict = make_engine({"domain": {"secret": 1}})

    @process(inputs=["domain.other"])
    def peek(ctx):
        return ctx.domain.secret

    assert lax.execute(peek) == 1
    with pytest.raises(ContractViolationError):
        strict.execute(peek)
    assert lax.execute(peek) == 1


def test_two_engines_share_no_state_or_hub(make_engine):
    e1 = make_engine({"domain": {"x": 1}})
    e2 = make_engine({"domain": {"x": 1}})
    rx1, rx2 = e1.signals.subscribe(), e2.signals.subscribe()
    with e1.transaction() as tx:
        tx.update(data={"domain.x": 2}, signal={"domain.sig_e1": 1})
    assert e2.state.domain.x == 1 and e2.state.version == 0
    assert e1.state.domain.x == 2
    assert len(drain(rx1)) == 1 and drain(rx2) == []


def test_closing_one_engine_leaves_the_other_working(make_engine):
    e1, e2 = make_engine(), make_engine()
    e1.close()
    with e2.transaction() as tx:
        tx.update(data={"domain.alive": True})
    assert e2.state.domain.alive is True


def test_same_context_object_is_not_shared(make_engine):
    context = {"domain": {"entries": [1]}}
    e1, e2 = make_engine(context), make_engine(context)
    with e1.transaction() as tx:
        tx.update(data={"domain.entries": [1, 2]})
    assert e2.state.domain.entries == [1]
    assert context == {"domain": {"entries": [1]}}


QUIET_SCRIPT = textwrap.dedent("""\
    import theus
    from theus import TheusEngine, process

    @process(inputs=["domain.n"], outputs=["domain.n", "domain.sig_done"])
    def bump(ctx):
        ctx.domain.n = ctx.domain.n + 1
        ctx.domain.sig_done = True

    with TheusEngine(context={"domain": {"n": 0}}) as engine:
        rx = engine.signals.subscribe()
        engine.execute(bump)
        with engine.transaction() as tx:
            tx.update(data={"domain.m": 1})
        try:
            engine.execute("missing")
        except theus.ProcessNotFoundError:
            pass
        assert engine.state.domain.n == 1
        assert rx.try_recv().name == "domain.sig_done"
    theus.backends(refresh=True)
""")


def _run_quietly(code, cwd, backend):
    env = dict(os.environ)
    env["THEUS_BACKEND"] = backend
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("code", ["import theus", QUIET_SCRIPT], ids=["import", "use"])
def test_theus_is_quiet_and_writes_nothing(tmp_path, backend, code):
    result = _run_quietly(code, tmp_path, backend)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "", f"theus printed to stdout: {result.stdout!r}"
    assert result.stderr == "", f"theus printed to stderr: {result.stderr!r}"
    assert sorted(os.listdir(tmp_path)) == [], "theus wrote files into the working directory"
