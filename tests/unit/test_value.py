"""`_value.Value` records behave as the frozen slotted dataclasses they replace: equality and
hash by fields, the dataclass repr, frozen, pickle and copy, and `OrderedValue`'s ordering."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from objget._ranges import ContentRange
from objget._value import OrderedValue, Value, setfield
from objget.backends._target import Origin
from objget.engine._controller_settings import ControllerSettings
from objget.engine._plan import Span
from objget.integrity import Verified


class Pair(Value):
    FIELDS = ("a", "b")
    __slots__ = FIELDS
    a: int
    b: object

    def __init__(self, a: int, b: object = None) -> None:
        setfield(self, "a", a)
        setfield(self, "b", b)


@dataclasses.dataclass(frozen=True, slots=True)
class DataPair:
    a: int
    b: object = None


def test_equality_hash_and_repr_as_a_frozen_dataclass():
    assert Pair(1, "x") == Pair(1, "x") and Pair(1, "x") != Pair(1, "y")
    assert hash(Pair(1, "x")) == hash(Pair(1, "x")) == hash(DataPair(1, "x"))
    assert repr(Pair(1, "x")) == "Pair(a=1, b='x')" == repr(DataPair(1, "x")).replace("Data", "")
    assert Pair(1) != DataPair(1) and Pair(1) != (1, None)  # another class is never equal
    assert {Pair(1): "one"}[Pair(1)] == "one"


def test_frozen():
    p = Pair(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.a = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del p.a
    with pytest.raises(AttributeError):
        setfield(p, "c", 3)  # slots: no other attribute
    assert p.a == 1


def test_pickle_and_copy_keep_the_fields():
    records = [
        Pair(1, (2, 3)),
        Span(0, 10, 7),
        Origin("http", "::1", 80, "[::1]"),
        ContentRange(range=Span(0, 4).range, total=None),
        Verified(names=("size", "md5"), values={"md5": "0" * 32}),  # a mappingproxy never pickled
        ControllerSettings(max_streams=4),
    ]
    for r in records:
        for again in (pickle.loads(pickle.dumps(r)), copy.copy(r), copy.deepcopy(r)):
            assert again == r and type(again) is type(r)
            assert repr(again) == repr(r)


def test_ordered_value_orders_by_fields_within_its_class():
    spans = [Span(5, 9), Span(0, 4, 2), Span(0, 4, 1), Span(0, 3)]
    assert sorted(spans) == [Span(0, 3), Span(0, 4, 1), Span(0, 4, 2), Span(5, 9)]
    assert Span(0, 1) < Span(0, 2) <= Span(0, 2) and Span(3, 4) > Span(0, 9) >= Span(0, 9)
    with pytest.raises(TypeError):
        assert Span(0, 1) < (0, 2)  # type: ignore[operator]
    assert isinstance(Span(0, 1), OrderedValue)


def test_controller_settings_still_validate_and_default():
    assert ControllerSettings() == ControllerSettings(max_streams=16, initial=1)
    assert ControllerSettings.fixed(4).min_streams == ControllerSettings.fixed(4).max_streams == 4
    with pytest.raises(ValueError, match="max_streams"):
        ControllerSettings(min_streams=3, max_streams=2)
