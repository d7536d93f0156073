"""Subprocess of the workflow crash tests (spec/21 §8, §9): ``python -m
theus_conformance.tests._durable_child BACKEND DIR MODE K FACTORY``.

Runs (or, when the run exists, resumes) ``WORKFLOW`` on a durable engine in ``DIR``. ``MODE``
``before``: SIGKILL inside the store transaction of version ``K``; ``after``: SIGKILL right
after version ``K`` was stored; ``none``: run to the end. Prints the final state as JSON.

With ``K`` = ``pause`` it runs ``PAUSE_WORKFLOW`` instead: ``MODE`` ``before`` kills inside the
store transaction that persists the pause, ``after`` right after it; ``none`` runs (or
resumes) until the run pauses or ends; ``answer`` answers the open request with ``"yes"``.
"""

import json
import os
import pathlib
import signal
import sys

from theus import Stage, TheusEngine, process
from theus_conformance.stores import resolve_factory

WORKFLOW = """
steps:
  - a
  - flux: while
    condition: domain.i < 3
    do: [loop_body]
  - flux: if
    condition: domain.i == 3
    then: [b]
    else: [never]
  - flux: parallel
    branches: [[left], [right]]
  - c
"""
STEP_COMMITS = 8  # a, loop_body x3, b, left, right, c

PAUSE_WORKFLOW = """
steps:
  - a
  - flux: pause
    prompt: {q: approve}
    into: domain.answer
  - b
"""


def _counter(name, extra=()):
    @process(
        name=name, inputs=[f"domain.cnt_{name}", *extra], outputs=[f"domain.cnt_{name}", *extra]
    )
    def body(ctx):
        setattr(ctx.domain, f"cnt_{name}", getattr(ctx.domain, f"cnt_{name}") + 1)
        if extra:
            ctx.domain.i += 1

    return body


CONTEXT = {
    "domain": {
        "i": 0,
        "answer": None,
        **{f"cnt_{n}": 0 for n in ("a", "loop_body", "b", "never", "left", "right", "c")},
    }
}


class _KillAfter(Stage):
    name = "kill-after"

    def __init__(self, version):
        self.version = version

    def after_commit(self, snapshot, changes):
        if snapshot.version == self.version:
            os.kill(os.getpid(), signal.SIGKILL)


def _kill_at_the_pause(store, mode):
    """SIGKILL inside (``before``) or right after (``after``) the transaction that stores the
    pending request (the SQL stores' internals, like ``kill_inside``)."""
    if mode == "before":
        original = store._pending_rows

        def rows(conn, run_id, version, pending, answered):
            original(conn, run_id, version, pending, answered)
            if pending is not None:
                os.kill(os.getpid(), signal.SIGKILL)

        store._pending_rows = rows
    elif mode == "after":
        put = store.put_position

        def put_position(run_id, version, position, *, pending=None, answered=None):
            put(run_id, version, position, pending=pending, answered=answered)
            if pending is not None:
                os.kill(os.getpid(), signal.SIGKILL)

        store.put_position = put_position


def _pause_main(backend, store, mode):
    _kill_at_the_pause(store, mode)
    existed = store.get_run("wf") is not None
    engine = TheusEngine(CONTEXT, backend=backend, store=store, run_id="wf")
    for name in ("a", "b"):
        engine.register(_counter(name))
    if mode == "answer":
        [request] = engine.pending()
        run = engine.resume(request.run_id, request.token, "yes", workflow=PAUSE_WORKFLOW)
    elif existed and store.position("wf") is not None:
        run = engine.resume_workflow(PAUSE_WORKFLOW)
    else:
        run = engine.execute_workflow(PAUSE_WORKFLOW, run_id="flux-run")
    out = {
        "state": engine.state.to_dict(),
        "version": engine.state.version,
        "executed": list(run.executed),
        "run_id": run.run_id,
        "status": run.status,
    }
    sys.stdout.write(json.dumps(out) + "\n")


def main():
    backend, directory, mode = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
    under_test = resolve_factory(sys.argv[5])(directory)
    if sys.argv[4] == "pause":
        _pause_main(backend, under_test.open(), mode)
        return
    k = int(sys.argv[4])
    store = under_test.open()
    if mode == "before":
        under_test.kill_inside(store, k)
    existed = store.get_run("wf") is not None
    engine = TheusEngine(CONTEXT, backend=backend, store=store, run_id="wf")
    for name in ("a", "b", "never", "left", "right", "c"):
        engine.register(_counter(name))
    engine.register(_counter("loop_body", ("domain.i",)))
    if mode == "after":
        engine.pipeline.add(_KillAfter(k))
    if existed and store.position("wf") is not None:
        run = engine.resume_workflow(WORKFLOW)
    else:
        run = engine.execute_workflow(WORKFLOW, run_id="flux-run")
    out = {
        "state": engine.state.to_dict(),
        "version": engine.state.version,
        "executed": list(run.executed),
        "run_id": run.run_id,
    }
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
