"""guessme_serve.heap: start-up's objects leave the full collections, later garbage is still collected."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from guessme_serve import heap

pytestmark = pytest.mark.unit


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test session collects as usual


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> Node:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a


def in_full_collections(obj: object) -> bool:
    """Whether a full collection walks `obj` (frozen objects sit in no generation)."""
    return any(o is obj for generation in range(3) for o in gc.get_objects(generation))


def test_live_objects_leave_full_collections_and_new_garbage_is_still_collected(unfrozen: None) -> None:
    long_lived = [cycle() for _ in range(20_000)]  # what a replica's imports leave behind
    assert in_full_collections(long_lived[0])
    frozen = heap.freeze_long_lived()
    assert frozen >= 40_000  # both nodes of every cycle
    assert not in_full_collections(long_lived[0])
    assert not in_full_collections(long_lived[-1].other)
    later = cycle()
    assert in_full_collections(later)  # objects made after the freeze are collected as before
    del later
    assert gc.collect() >= 2  # and a cycle of them is found and freed
    del long_lived


def test_garbage_left_at_start_up_is_collected_before_the_freeze(unfrozen: None) -> None:
    collected: list[int] = []

    class Tracked(Node):
        def __del__(self) -> None:
            collected.append(1)

    a, b = Tracked(), Tracked()
    a.other, b.other = b, a
    del a, b  # unreachable, but only the collector can free a cycle
    heap.freeze_long_lived()
    assert len(collected) == 2
