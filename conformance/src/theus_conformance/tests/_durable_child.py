"""Subprocess of the workflow crash tests (spec/21 §8): ``python -m
theus_conformance.tests._durable_child BACKEND DIR MODE K FACTORY``.

Runs (or, when the run exists, resumes) ``WORKFLOW`` on a durable engine in ``DIR``. ``MODE``
``before``: SIGKILL inside the store transaction of version ``K``; ``after``: SIGKILL right
after version ``K`` was stored; ``none``: run to the end. Prints the final state as JSON.
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


def main():
    backend, directory, mode, k = (
        sys.argv[1],
        pathlib.Path(sys.argv[2]),
        sys.argv[3],
        int(sys.argv[4]),
    )
    under_test = resolve_factory(sys.argv[5])(directory)
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
