"""spec/08 — a Hypothesis state machine drives the hub of the backend under test, the reference
backend's hub and a plain-Python model of the spec with the same operations (subscribe with
both policies and small capacities and topic filters, publish, publish_many, try_recv,
recv_many, len, lagged, closing receivers and the hub) and compares every outcome.

Single-threaded and deterministic: a ``block`` receiver that is full makes ``publish(...,
timeout=0)`` raise ``TimeoutError`` with nothing delivered, instead of waiting.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

import theus
from theus import ContextError, SignalEmpty, SignalHub, SignalLagged

REFERENCE = "reference"
TOPICS = ["a", "a.b", "a.b.c", "b", "sig_x", "sig_x.y"]
PATTERNS = [None, ["a"], ["a.*"], ["a.**"], ["*"], ["sig_**", "b"], []]


def _match(patterns, topic):
    if patterns is None:
        return True
    for p in patterns:
        rx = "".join(
            ".*" if tok == "**" else "[^.]*" if tok == "*" else re.escape(tok)
            for tok in re.findall(r"\*\*|\*|[^*]+", p)
        )
        if re.fullmatch(rx, topic, re.DOTALL):
            return True
    return False


@dataclass
class _ModelRx:
    policy: str
    capacity: int
    topics: list[str] | None
    queue: deque = field(default_factory=deque)
    missed: int = 0
    lagged: int = 0
    closed: bool = False


class _Model:
    """spec/08 in a few lines, single-threaded."""

    def __init__(self):
        self.receivers: list[_ModelRx] = []
        self.closed = False

    def subscribe(self, policy, capacity, topics):
        if self.closed:
            raise ContextError
        rx = _ModelRx(policy, capacity, topics)
        self.receivers.append(rx)
        return rx

    def publish(self, message, timeout=0):
        if self.closed:
            raise ContextError
        targets = [r for r in self.receivers if not r.closed and _match(r.topics, message)]
        if any(r.policy == "block" and len(r.queue) >= r.capacity for r in targets):
            raise TimeoutError
        for r in targets:
            if len(r.queue) >= r.capacity:
                r.queue.popleft()
                r.missed += 1
                r.lagged += 1
            r.queue.append(message)
        return len(targets)

    def publish_many(self, messages, timeout=0):
        return sum(self.publish(m) for m in messages)

    def close(self):
        self.closed = True
        for r in self.receivers:
            r.closed = True


def _take(rx, n):
    if rx.missed:
        missed, rx.missed = rx.missed, 0
        raise SignalLagged(missed)
    return [rx.queue.popleft() for _ in range(min(n, len(rx.queue)))]


def _model_try_recv(rx):
    if not rx.queue and not rx.missed:
        raise ContextError if rx.closed else SignalEmpty("")
    return _take(rx, 1)[0]


def _model_recv_many(rx, n):
    if not rx.queue and not rx.missed:
        if rx.closed:
            raise ContextError
        return []
    return _take(rx, n)


def _outcome(fn):
    try:
        return ("ok", fn())
    except SignalLagged as exc:
        return ("lagged", exc.missed)
    except (ContextError, SignalEmpty, TimeoutError) as exc:
        return ("error", type(exc).__name__)


class HubMachine(RuleBasedStateMachine):
    backends: tuple[str, ...] = (REFERENCE,)

    def __init__(self):
        super().__init__()
        self.hubs = [SignalHub(backend=b) for b in self.backends]
        self.model = _Model()
        self.receivers: list[tuple[list, _ModelRx]] = []

    def _same(self, outcomes):
        first = outcomes[0]
        for other in outcomes[1:]:
            assert other == first, outcomes

    @rule(
        policy=st.sampled_from(["lag", "block"]),
        capacity=st.integers(1, 4),
        topics=st.sampled_from(PATTERNS),
    )
    def subscribe(self, policy, capacity, topics):
        made = []
        outs = []
        for hub in self.hubs:
            outs.append(_outcome(lambda h=hub: made.append(h.subscribe(policy, capacity, topics))))
        model_rx = []
        outs.append(
            _outcome(lambda: model_rx.append(self.model.subscribe(policy, capacity, topics)))
        )
        self._same([o[0] for o in outs])
        if model_rx:
            self.receivers.append((made, model_rx[0]))

    @rule(message=st.sampled_from(TOPICS))
    def publish(self, message):
        outs = [_outcome(lambda h=h: h.publish(message, timeout=0)) for h in self.hubs]
        outs.append(_outcome(lambda: self.model.publish(message)))
        self._same(outs)

    @rule(messages=st.lists(st.sampled_from(TOPICS), max_size=6))
    def publish_many(self, messages):
        # a timeout part-way through delivers the earlier messages: compare the outcome and
        # the states (invariant), message by message
        for m in messages:
            self.publish(m)

    @rule(data=st.data())
    def try_recv(self, data):
        if not self.receivers:
            return
        made, model_rx = data.draw(st.sampled_from(self.receivers))
        outs = [_outcome(rx.try_recv) for rx in made]
        outs.append(_outcome(lambda: _model_try_recv(model_rx)))
        self._same(outs)

    @rule(data=st.data(), n=st.integers(1, 5))
    def recv_many(self, data, n):
        if not self.receivers:
            return
        made, model_rx = data.draw(st.sampled_from(self.receivers))
        outs = [_outcome(lambda rx=rx: rx.recv_many(n, timeout=0)) for rx in made]
        outs.append(_outcome(lambda: _model_recv_many(model_rx, n)))
        self._same(outs)

    @rule(data=st.data())
    def close_receiver(self, data):
        if not self.receivers:
            return
        made, model_rx = data.draw(st.sampled_from(self.receivers))
        for rx in made:
            rx.close()
        model_rx.closed = True

    @rule()
    def close_hub(self):
        for hub in self.hubs:
            hub.close()
        self.model.close()

    @invariant()
    def same_counters(self):
        for made, model_rx in self.receivers:
            assert [len(rx) for rx in made] == [len(model_rx.queue)] * len(made)
            assert [rx.lagged for rx in made] == [model_rx.lagged] * len(made)


def test_hub_matches_the_model_and_the_reference(backend):
    backends: tuple[str, ...] = (backend,)
    available = {i.name: i for i in theus.backends()}
    if backend != REFERENCE and REFERENCE in available and available[REFERENCE].error is None:
        backends = (backend, REFERENCE)
    machine = type("HubRun", (HubMachine,), {"backends": backends})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=60,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
