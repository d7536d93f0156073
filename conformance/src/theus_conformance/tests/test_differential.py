"""Differential testing: the same random operations on the backend under test and on the
reference backend (the executable reading of the spec); states, versions, signals, return
values and error types must be identical (like CPython's ``deccheck.py`` for ``_decimal``).
"""

from __future__ import annotations

import copy

from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from theus import TheusEngine
from theus_conformance.support import REFERENCE, drain, require_reference, run_machine
from theus_conformance.tests import _ops


class EdgeDifferential(RuleBasedStateMachine):
    """Edge inputs only (huge ints, odd keys, list paths, deep and cyclic values); the base of
    the full machine, which adds the ordinary operations."""

    backend = REFERENCE  # the backend under test, replaced per run

    def __init__(self):
        super().__init__()
        self.engines = []

    @initialize()
    def start(self):
        context = copy.deepcopy(_ops.DIFFERENTIAL_CONTEXT)
        self.engines = [
            TheusEngine(context=context, backend=self.backend),
            TheusEngine(context=context, backend=REFERENCE),
        ]
        self.receivers = [e.signals.subscribe() for e in self.engines]

    def _both(self, op):
        tested, reference = (_ops.run(e, op) for e in self.engines)
        assert tested.ok == reference.ok, (
            f"{op!r}: {self.backend} {'succeeded' if tested.ok else f'raised {tested.error}'}, "
            f"reference {'succeeded' if reference.ok else f'raised {reference.error}'}"
        )
        if reference.ok:
            assert tested.value == reference.value, (op, tested.value, reference.value)
        else:
            assert tested.error is reference.error, (op, tested.error, reference.error)

    @rule(op=_ops.edge_ops)
    def edge_input(self, op):
        self._both(op)

    @invariant()
    def same_state(self):
        if not self.engines:
            return
        tested, reference = (e.state for e in self.engines)
        assert tested.version == reference.version
        assert tested.to_dict() == reference.to_dict()

        def order(tree):  # key order is specified (spec/01)
            return [list(ns) if isinstance(ns, dict) else ns for ns in tree.values()]

        assert order(tested.to_dict()) == order(reference.to_dict())
        assert dict(tested.signals) == dict(reference.signals)
        assert [(m.name, _ops.plain(m.value), m.version) for m in drain(self.receivers[0])] == [
            (m.name, _ops.plain(m.value), m.version) for m in drain(self.receivers[1])
        ]

    def teardown(self):
        for engine in self.engines:
            engine.close()


class Differential(EdgeDifferential):
    """Every kind of operation."""

    @rule(op=_ops.program_ops)
    def program(self, op):
        self._both(op)

    @rule(op=_ops.update_ops)
    def state_update(self, op):
        self._both(op)

    @rule(op=_ops.host_ops)
    def host_transaction(self, op):
        self._both(op)

    @rule(op=_ops.inplace_ops)
    def in_place(self, op):
        self._both(op)

    @rule(op=_ops.return_ops)
    def returning(self, op):
        self._both(op)

    @rule(op=_ops.cas_ops)
    def compare_and_swap(self, op):
        self._both(op)


def run_differential(backend, max_examples=30, steps=20, base=None):
    run_machine(base or Differential, max_examples, steps, backend=backend)


def test_backend_matches_reference(backend):
    require_reference(backend)
    run_differential(backend)


def test_backend_matches_reference_on_edge_inputs(backend):
    require_reference(backend)
    run_differential(backend, max_examples=60, steps=15, base=EdgeDifferential)
