"""Values replaced by a commit are released by that commit (issue 6, class 5; spec/05).

The Rust map keeps recently overwritten keys beside its shared trie; a replaced value must never
stay shadowed there (nor in the engine's cached snapshot object) once no live snapshot can reach
it. Checked with weak references on large maps (so the trie is deep and the overwrite buffer
fills and cycles) and with the resident set size of a subprocess (/proc/self/statm).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import weakref

import pytest

from theus import TheusEngine, process

BIG = 100_000


class Blob:
    """A weakly referenceable leaf."""


def _engine(extra=None):
    domain = {f"k{i}": i for i in range(BIG)}
    domain.update(extra or {})
    return TheusEngine(context={"domain": domain, "global": {}}, backend="rust")


@process(inputs=["domain.k1"], outputs=["domain.k1"])
def bump(ctx):
    ctx.domain.k1 = ctx.domain.k1 + 1


@pytest.mark.parametrize("zone_key", ["heavy_blob", "blob"])
@pytest.mark.parametrize("others", [0, 3, 20])
def test_replaced_value_dies_with_its_commit_in_a_large_map(zone_key, others):
    engine = _engine({zone_key: Blob()})
    ref = weakref.ref(engine.state.get(f"domain.{zone_key}"))
    # Fill the overwrite buffer with other hot keys first (it holds at most a few keys).
    for i in range(others):
        with engine.transaction() as tx:
            tx.update(data={f"domain.k{i + 10}": -i})
    with engine.transaction() as tx:
        if zone_key.startswith("heavy_"):
            tx.update(heavy={f"domain.{zone_key}": None})
        else:
            tx.update(data={f"domain.{zone_key}": None})
    assert ref() is None
    for _ in range(10):
        engine.execute(bump)
    assert ref() is None
    assert engine.state.domain.k1 == 11


def test_every_value_of_a_rotating_set_of_hot_keys_is_released():
    engine = _engine()
    refs = []
    for round_ in range(6):
        for key in range(25):  # more hot keys than the overwrite buffer holds
            fresh = Blob()
            refs.append(weakref.ref(fresh))
            with engine.transaction() as tx:
                tx.update(data={f"domain.k{key}": fresh})
            del fresh
        alive = sum(r() is not None for r in refs)
        assert alive == 25, f"round {round_}: {alive} values alive, 25 stored"


def test_a_held_snapshot_keeps_the_value_and_releases_it_when_dropped():
    engine = _engine({"heavy_blob": Blob()})
    held = engine.state
    ref = weakref.ref(held.get("domain.heavy_blob"))
    with engine.transaction() as tx:
        tx.update(heavy={"domain.heavy_blob": None})
    for _ in range(5):
        engine.execute(bump)
    assert ref() is held.get("domain.heavy_blob")
    del held
    assert ref() is None


def test_the_cached_state_object_does_not_keep_a_replaced_value():
    # engine.state is the same object until the next commit; the engine must not keep the old
    # object after the commit (nobody reads engine.state in between here).
    engine = _engine({"x": Blob()})
    first = engine.state
    assert engine.state is first
    ref = weakref.ref(first.get("domain.x"))
    del first
    with engine.transaction() as tx:
        tx.update(data={"domain.x": 0})
    assert ref() is None
    assert engine.state is engine.state


RSS_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from theus import TheusEngine, process

    MB = 2 ** 20
    PAGE = os.sysconf("SC_PAGE_SIZE")

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE

    key, how = sys.argv[1], sys.argv[2]
    path = "domain." + key

    @process(inputs=["domain.n"], outputs=["domain.n"])
    def bump(ctx):
        ctx.domain.n = ctx.domain.n + 1

    @process(outputs=[path.rsplit(".", 1)[0] if "." in key else path])
    def replace(ctx):
        node = ctx.domain
        parts = key.split(".")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = None

    context = {"n": 0, "m": {}, **{f"k{i}": i for i in range(20_000)}}
    engine = TheusEngine(context={"domain": context, "global": {}}, backend="rust")
    base = rss()
    def write(value):
        # (a function: `tx.state`, the committed snapshot, must not outlive the call)
        with engine.transaction() as tx:
            if key.split(".")[-1].startswith("heavy_"):
                tx.update(heavy={path: value})
            else:
                tx.update(data={path: value})

    write(b"x" * (200 * MB))
    assert engine.state.get(path) is not None
    assert rss() - base > 150 * MB, "the value was not resident"
    if how == "process":
        engine.execute(replace)
    else:
        write(None)
    after_replace = rss() - base
    for _ in range(10):
        engine.execute(bump)
    after_more = rss() - base
    assert after_replace < 50 * MB, f"{after_replace / MB:.0f} MB still resident"
    assert after_more < 50 * MB, f"{after_more / MB:.0f} MB still resident"
    print("ok")
    """
)


@pytest.mark.parametrize("key", ["heavy_blob", "blob", "m.heavy_blob"])
@pytest.mark.parametrize("how", ["transaction", "process"])
def test_rss_drops_after_the_commit_that_replaced_a_200_mb_value(key, how):
    done = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, key, how],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
