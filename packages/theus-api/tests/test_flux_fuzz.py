"""spec/18 §2, §3 — generated malformed workflows and expressions get only FluxError (with a
location), never another exception."""

from __future__ import annotations

import random
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from theus import FluxError
from theus.flux import compile_expression, parse_workflow

_TOKENS = [
    "domain", "global", "signal", "cmd", "x", ".", "[", "]", "(", ")", "'a'", '"b"', "1", "0",
    "2.5", "**", "*", "+", "-", "/", "//", "%", "<", "==", "!=", "in", "not", "and", "or", "is",
    "None", "True", "if", "else", "len", "min", "get", ",", ":", "lambda", "for", "__class__",
    "_", "`", "@", "~", "<<", "{", "}", "\n", " ", "f'", "\\", "9" * 30, "\x00",
]  # fmt: skip

_VALID = """\
name: n
inputs: {limit: 3}
steps:
  - a
  - process: b
    with: {k: 1, e: {expr: "domain.x + limit"}}
  - flux: while
    condition: domain.x < limit and not signal.get('cmd_stop')
    max_iterations: 3
    do: [a, {flux: if, condition: "global.y == 'q'", then: [b], else: [a]}]
  - flux: run
    steps: [a]
  - flux: parallel
    branches: [[a], [b]]
"""

NAMESPACES = ("domain", "global")

_SETTINGS = settings(
    max_examples=400, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


@_SETTINGS
@given(st.lists(st.sampled_from(_TOKENS), max_size=25))
def test_generated_expressions(tokens: list[str]) -> None:
    text = " ".join(tokens)
    try:
        compile_expression(text, file="f.yaml", line=1, column=1, namespaces=("domain", "global"))
    except FluxError as exc:
        assert exc.file == "f.yaml" and exc.line is not None and exc.column is not None


@_SETTINGS
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(_VALID) - 1),
            st.integers(0, 6),
            st.text(alphabet=string.printable + "é\t", max_size=4),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_workflows(edits: list[tuple[int, int, str]]) -> None:
    text = _VALID
    for at, cut, insert in edits:
        at = min(at, len(text))
        text = text[:at] + insert + text[at + cut :]
    try:
        parse_workflow(text, file="m.yaml", processes={"a", "b"}, namespaces=("domain", "global"))
    except FluxError as exc:
        assert str(exc).startswith("m.yaml")
        assert exc.file == "m.yaml"


def _mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(text) + 1)
        cut = rng.randint(0, 6)
        insert = "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 4)))
        text = text[:at] + insert + text[at + cut :]
    return text


_ALPHABET = string.printable + "é\t:-[]{}&*!|>'\"#%@`"


def test_ten_thousand_malformed_documents_and_expressions() -> None:
    """The acceptance fuzz of issue 9: >= 10 000 generated documents and 10 000 generated
    expressions; every failure is a FluxError with a file, a line and a column."""
    rng = random.Random(20261202)
    failures = 0
    for _ in range(10_000):
        text = _mutate(rng, _VALID)
        try:
            parse_workflow(text, file="m.yaml", processes={"a", "b"}, namespaces=NAMESPACES)
        except FluxError as exc:
            failures += 1
            assert exc.file == "m.yaml" and exc.line is not None and exc.column is not None, text
    for _ in range(10_000):
        expression = " ".join(rng.choice(_TOKENS) for _ in range(rng.randint(1, 25)))
        try:
            compile_expression(expression, file="f.yaml", line=3, column=7, namespaces=NAMESPACES)
        except FluxError as exc:
            failures += 1
            assert exc.file == "f.yaml" and exc.line is not None and exc.column is not None
    assert failures > 10_000  # most generated inputs are malformed: the test saw errors
