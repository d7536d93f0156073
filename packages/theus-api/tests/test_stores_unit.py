"""theus.stores.codec (spec/21 §2): round trips of every allowed type, refusals when writing,
StoreCorruptError for anything else when reading; apply_delta on plain trees."""

from __future__ import annotations

import datetime
import decimal
import json
import math
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from theus.errors import StoreCorruptError
from theus.stores import codec

_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.datetimes()
    | st.dates()
    | st.times()
    | st.timedeltas()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.uuids()
)
_values = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
        | st.frozensets(st.integers() | st.text(max_size=3), max_size=4)
    ),
    max_leaves=20,
)


def _same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@given(_values)
def test_round_trip_keeps_types_and_values(value):
    back = codec.decode(codec.encode(value, zoned=False), "test")
    assert _same(back, value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats(value):
    back = codec.decode(codec.encode(value), "t")
    assert type(back) is float and (math.isnan(back) if value != value else back == value)


def test_encoding_is_deterministic_for_sets_and_tagged_maps():
    assert codec.encode(frozenset({3, 1, 2})) == codec.encode(frozenset({2, 3, 1}))
    assert codec.encode({"$": 1}) == '{"$":"map","v":{"$":1}}'
    assert codec.decode(codec.encode({"$": {"$": 2}}), "t") == {"$": {"$": 2}}
    assert codec.decode(codec.encode({1, 2}), "t") == frozenset({1, 2})


class _Sub(int):
    pass


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        (object(), r"builtins\.object"),
        (1j, r"builtins\.complex"),
        (_Sub(1), r"_Sub"),
        (bytearray(b"x"), r"builtins\.bytearray"),
        ({1: 2}, r"a map key 1 is not a str"),
        ({"heavy_x": 1}, r"'a\.heavy_x' durably: heavy values"),
    ],
)
def test_refused_values_name_the_path(value, pattern):
    with pytest.raises(
        TypeError, match=r"cannot store 'a.*' durably: .*" + pattern.split("durably: ")[-1]
    ):
        codec.encode(value, ("a",))


def test_heavy_keys_below_another_zone_are_plain_keys():
    assert codec.decode(codec.encode({"heavy_x": 1}, ("a", "log_l"), zoned=False), "t") == {
        "heavy_x": 1
    }
    assert codec.encode({"meta_m": {"heavy_x": 1}}, ("a",)) == '{"meta_m":{"heavy_x":1}}'


def test_nesting_is_capped_on_both_sides():
    value: object = 1
    for _ in range(codec.MAX_NESTING + 5):
        value = (value,)
    with pytest.raises(TypeError, match="nests deeper than 400"):
        codec.encode(value)
    text = "[" * 600 + "]" * 600
    with pytest.raises(StoreCorruptError, match="run 'r' version 1: "):
        codec.decode(text, "run 'r' version 1")


@pytest.mark.parametrize(
    "text",
    [
        '{"$":"pickle","v":"gASV"}',
        '{"$":"tuple"}',
        '{"$":"tuple","v":[],"x":1}',
        '{"$":"frozenset","v":{"a":1}}',
        '{"$":"bytes","v":"%%%"}',
        '{"$":"datetime","v":"yesterday"}',
        '{"$":"decimal","v":"x"}',
        '{"$":"uuid","v":"nope"}',
        '{"$":"timedelta","v":[1,2]}',
        '{"$":"float","v":"1e3"}',
        '{"$":"frozenset","v":[[1]]}',
        "NaN",
        "[1,",
        b"\xff\xfe",
    ],
)
def test_malformed_text_raises_store_corrupt_error(text):
    with pytest.raises(StoreCorruptError, match=r"^run 'x' version 7: "):
        codec.decode(text, "run 'x' version 7")


def test_apply_delta():
    tree = {"domain": {"a": 1, "l": [1, 2], "m": {"x": 1}}}
    delta = {
        "ops": [
            ["set", ["domain", "a"], 2],
            ["append", ["domain", "l"], [3, 4]],
            ["set", ["domain", "l", "0"], 9],
            ["delete", ["domain", "m", "x"], None],
            ["delete", ["domain", "l", "1"], None],
        ],
        "signals": [["domain.sig", True]],
    }
    codec.apply_delta(tree, delta, "w")
    assert tree == {"domain": {"a": 2, "l": [9, 3, 4], "m": {}}}
    for bad in (
        {"ops": [["set", ["nowhere", "x"], 1]]},
        {"ops": [["append", ["domain", "a"], [1]]]},
        {"ops": [["set", [], 1]]},
        {"ops": [["boom", ["domain", "a"], 1]]},
        {"ops": "x"},
        {"ops": [["set", ["domain", 3], 1]]},
    ):
        with pytest.raises(StoreCorruptError, match=r"^w: "):
            codec.apply_delta(tree, bad, "w")


def test_json_text_is_compact_and_unicode():
    assert codec.encode({"é": [1, 2.0]}) == '{"é":[1,2.0]}'
    assert json.loads(codec.encode(decimal.Decimal("1.5"))) == {"$": "decimal", "v": "1.5"}
    assert codec.decode(codec.encode(uuid.UUID(int=1)), "t") == uuid.UUID(int=1)
    assert codec.decode(codec.encode(datetime.timedelta(-1, 3, 5)), "t") == datetime.timedelta(
        -1, 3, 5
    )
