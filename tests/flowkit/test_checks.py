"""One rule for every count a user passes: an int >= 1, and ``True`` is not one."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import trio

import flowkit
from flowkit._checks import check_count
from flowkit.mcp import InMemoryEventStore, SSEDecoder


async def _double(x: int) -> int:
    return 2 * x


@pytest.mark.parametrize("value", [1, 2, 10**6])
def test_a_count_is_returned_unchanged(value: int) -> None:
    assert check_count(value, "n") == value


@pytest.mark.parametrize("value", [True, False, 0, -1, 1.5, 1.0, "3", None])
def test_anything_else_is_a_value_error_naming_the_argument(value: object) -> None:
    with pytest.raises(ValueError, match=rf"^size must be an int >= 1, got {value!r}$"):
        check_count(value, "size")


def _branch(n: Any) -> object:
    send, _ = trio.open_memory_channel[int](0)
    return flowkit.branch(send, max_items=n)


# Every place that takes a count, each with its argument's name in the message.
COUNTED: list[tuple[str, Callable[[Any], object]]] = [
    ("buffer size", flowkit.buffer),
    ("max_items", flowkit.drop_oldest),
    ("max_items", flowkit.drop_newest),
    ("max_size", flowkit.batch),
    ("max_size", flowkit.adaptive_batch),
    ("max_concurrent", lambda n: flowkit.concurrent_map(_double, max_concurrent=n)),
    ("branch max_items", _branch),
    ("max_items, unless math.inf,", flowkit.open_channel),
    ("max_events_per_stream", lambda n: InMemoryEventStore(max_events_per_stream=n)),
    ("max_events", lambda n: InMemoryEventStore(max_events=n)),
    ("max_event_size", lambda n: SSEDecoder(max_event_size=n)),
]


@pytest.mark.parametrize(("what", "make"), COUNTED, ids=[what for what, _ in COUNTED])
def test_true_is_not_a_count_anywhere(what: str, make: Callable[[Any], object]) -> None:
    for wrong in (True, 0):
        with pytest.raises(
            ValueError, match=rf"^{re.escape(what)} must be an int >= 1, got {wrong}$"
        ):
            make(wrong)
    make(1)  # the smallest count is one
