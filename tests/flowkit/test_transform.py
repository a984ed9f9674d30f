"""map / filter: semantics, fusion, and the operator contract."""

from __future__ import annotations

import pytest
import trio

import flowkit
from flowkit.testing import check_operator


async def test_sync_map_contract() -> None:
    await check_operator(lambda: flowkit.map(lambda x: x * 2), [1, 2, 3], expected=[2, 4, 6])


async def test_async_map_contract() -> None:
    async def triple(x: int) -> int:
        await trio.lowlevel.checkpoint()
        return x * 3

    await check_operator(lambda: flowkit.map(triple), [1, 2, 3], expected=[3, 6, 9])


async def test_sync_filter_contract_counts_filtered() -> None:
    op = flowkit.filter(lambda x: x % 2)
    await check_operator(lambda: flowkit.filter(lambda x: x % 2), [1, 2, 3, 4], expected=[1, 3])
    async with flowkit.open_pipeline([1, 2, 3, 4, 5], op) as out:
        assert [x async for x in out] == [1, 3, 5]
    stats = op.statistics()
    assert (stats.items_in, stats.items_out, stats.filtered) == (5, 3, 2)


async def test_async_filter_contract() -> None:
    async def odd(x: int) -> bool:
        return bool(x % 2)

    await check_operator(lambda: flowkit.filter(odd), [1, 2, 3, 4], expected=[1, 3])


async def test_map_error_propagates_with_original_type() -> None:
    def explode(x: int) -> int:
        if x == 3:
            raise KeyError(x)
        return x

    seen: list[int] = []
    with pytest.raises(KeyError):
        async with flowkit.open_pipeline(range(10), flowkit.map(explode), flowkit.buffer(1)) as out:
            async for x in out:
                seen.append(x)
    assert 3 not in seen


async def test_operator_object_is_one_stage() -> None:
    op = flowkit.map(str)
    async with flowkit.open_pipeline([1], op) as out:
        assert [x async for x in out] == ["1"]
    send, receive = flowkit.open_channel(1)
    with pytest.raises(RuntimeError, match="one stage"):
        await op(receive, send)
