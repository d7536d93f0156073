"""The persistent map and list against a plain-dict model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theus_reference._pmap import MISSING, PMap

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
