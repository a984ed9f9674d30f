"""Typical user code must type-check under ``mypy --strict`` (the test command checks this file).

Factories whose item type is not fixed by their arguments return
``Operator[Any, Any]``: a bare type variable there would be inferred as
``Never`` and reject every channel a user passes.
"""

from __future__ import annotations

import trio

import flowkit


async def test_operators_accept_typed_channels() -> None:
    send_a, receive_a = trio.open_memory_channel[int](0)
    send_b, receive_b = trio.open_memory_channel[int](0)
    send_c, receive_c = trio.open_memory_channel[int](0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(flowkit.buffer(4), receive_a, send_b)
        nursery.start_soon(flowkit.latest(), receive_b, send_c)
        async with send_a:
            await send_a.send(1)
        async with receive_c:
            assert [x async for x in receive_c] == [1]
    typed: flowkit.Operator[int, int] = flowkit.drop_oldest(3)
    async with flowkit.open_pipeline(range(3), flowkit.map(str), typed) as out:
        assert [x async for x in out] == ["0", "1", "2"]
