"""The persistent map and list against a plain-dict model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theus_reference._pmap import MISSING, PMap
from theus_reference._pvec import PList

keys = st.text(min_size=1, max_size=6)
ops = st.lists(st.tuples(st.sampled_from(["set", "delete"]), keys, st.integers()), max_size=300)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_pmap_matches_dict_and_old_versions_never_change(operations: list) -> None:
    model: dict[str, int] = {}
    m = PMap()
    history = [(m, dict(model))]
    for kind, key, value in operations:
        if kind == "set":
            m = m.set(key, value)
            model[key] = value
        elif key in model:
            m = m.delete(key)
            del model[key]
        else:
            with pytest.raises(KeyError):
                m.delete(key)
        history.append((m, dict(model)))
    for version, expected in history:
        assert len(version) == len(expected)
        assert dict(version.items()) == expected
        assert version.keys() == sorted(expected)
        for key, value in expected.items():
            assert version.get(key) == value
            assert key in version


def test_large_map_shares_structure_and_stays_correct() -> None:
    m = PMap({f"k{i}": i for i in range(100_000)})
    m2 = m.set("k5", -5)
    assert m.get("k5") == 5 and m2.get("k5") == -5
    assert len(m2) == len(m) == 100_000
    assert m.get("absent") is MISSING
    shared = sum(a is b for a, b in zip(m._trie, m2._trie, strict=True))  # type: ignore[arg-type]
    assert shared == 31  # one root slot was copied; the other 31 subtrees are shared
    m3 = m2.delete("k7")
    assert "k7" not in m3 and "k7" in m2 and len(m3) == 99_999


list_ops = st.lists(
    st.tuples(st.sampled_from(["append", "set", "drop"]), st.integers(0, 10_000)), max_size=400
)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 1100), list_ops)
def test_plist_matches_list_and_old_versions_never_change(start: int, operations: list) -> None:
    model = list(range(start))
    v = PList(model)
    history = [(v, list(model))]
    for kind, n in operations:
        if kind == "append":
            v, model = v.append(n), [*model, n]
        elif kind == "set" and model:
            i = n % len(model)
            v = v.set(i, -n)
            model = [*model[:i], -n, *model[i + 1 :]]
        elif kind == "drop" and model:
            v, model = v.drop_last(), model[:-1]
        history.append((v, list(model)))
    for version, expected in history:
        assert len(version) == len(expected)
        assert list(version) == expected
        assert all(version.get(i) == x for i, x in enumerate(expected))


def test_plist_append_shares_structure() -> None:
    big = PList(range(100_000))
    bigger = big.append(-1)
    assert len(bigger) == 100_001 and bigger.get(100_000) == -1 and len(big) == 100_000
    shared = sum(a is b for a, b in zip(big._root, bigger._root, strict=False))
    assert shared >= len(big._root) - 1  # only the last root slot was copied
