"""The processes of ``review.yaml`` and a ready engine for ``theus run``.

    theus run examples/flux/review.yaml --context examples.flux.review:make_engine
    theus run examples/flux/review.yaml --state examples/flux/state.json \
        --processes examples.flux.review
"""

from __future__ import annotations

from theus import TheusEngine, process


@process(inputs=["domain.topic"], outputs=["domain.notes"])
def fetch(ctx):
    ctx.domain.notes = [f"facts about {ctx.domain.topic}"]


@process(inputs=["domain.notes", "domain.round"], outputs=["domain.draft", "domain.round"])
def draft(ctx):
    ctx.domain.round += 1
    ctx.domain.draft = f"draft {ctx.domain.round}: {ctx.domain.notes[0]}"


@process(inputs=["domain.draft"], outputs=["domain.grade"])
def grade(ctx):
    ctx.domain.grade = len(ctx.domain.draft) % 7


@process(inputs=["domain.draft"], outputs=["domain.typos"])
def spellcheck(ctx):
    ctx.domain.typos = ctx.domain.draft.count("teh")


@process(inputs=["domain.round", "domain.typos"], outputs=["domain.score", "domain.flagged"])
def score(ctx):
    ctx.domain.score = ctx.domain.round - ctx.domain.typos
    ctx.domain.flagged = False


@process(inputs=["domain.draft"], outputs=["domain.published"])
def publish(ctx):
    ctx.domain.published = ctx.domain.draft


@process(inputs=["domain.draft"], outputs=["domain.escalated"])
def escalate(ctx):
    ctx.domain.escalated = True


@process(inputs=["domain.round"], outputs=["domain.log_archive"])
def archive(ctx):
    ctx.domain.log_archive.append(ctx.domain.round)


PROCESSES = (fetch, draft, grade, spellcheck, score, publish, escalate, archive)
STATE = {
    "domain": {
        "topic": "theus",
        "notes": [],
        "round": 0,
        "draft": "",
        "grade": 0,
        "typos": 0,
        "score": 0,
        "flagged": False,
        "published": None,
        "escalated": False,
        "log_archive": [],
    }
}


def make_engine() -> TheusEngine:
    """A new engine with the example's state and every process registered."""
    engine = TheusEngine(context=STATE)
    for fn in PROCESSES:
        engine.register(fn)
    return engine
