"""The operator contract, as an executable check.

Each clause is a separate scenario on a fresh operator, run over plain trio
memory channels (so an operator that only works inside a flowkit pipeline
fails) except the crash clause, which needs the pipeline runner.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

import attrs
import trio

from .._channel import FlowReceiveChannel, FlowSendChannel, _open_stage_channel
from .._exceptions import StreamAborted
from .._pipeline import open_pipeline
from .._tasks import _leaves

__all__ = ["ContractViolation", "check_operator"]

Factory = Callable[[], Callable[..., Any]]


class ContractViolation(AssertionError):
    """An operator broke a clause of the operator contract."""


class _Crash(Exception):
    """The error the crash scenario injects upstream."""


def _require(condition: bool, clause: str, detail: str) -> None:
    if not condition:
        raise ContractViolation(f"operator contract, {clause}: {detail}")


async def check_operator(
    make: Factory,
    inputs: Sequence[Any],
    *,
    expected: Sequence[Any] | None = None,
    flatten: Callable[[Sequence[Any]], Iterable[Any]] | None = None,
    lossless: bool = True,
    max_buffered: int | None = None,
    statistics: bool = True,
    seed: int = 0,
) -> list[Any]:
    """Check that the operators ``make()`` returns honour the contract.

    Args:
        make: returns a fresh operator each call (one object is one stage).
        inputs: the items to feed; at least two.
        expected: the exact outputs for ``inputs``, when deterministic.
        flatten: maps the output list to the input items it carries (for
            batching operators, ``lambda out: [x for b in out for x in b]``).
            With ``lossless`` the flattened outputs must equal ``inputs``.
        lossless: whether every input must come out (in order); set False
            for dropping operators (then outputs must be a subsequence).
        max_buffered: a bound ``statistics().buffered_peak`` must respect.
        statistics: whether to require a ``statistics()`` snapshot.
        seed: makes the cancellation points reproducible.

    Returns:
        The outputs of the plain run, for further assertions.

    Raises:
        ContractViolation: naming the clause that failed.
    """
    if len(inputs) < 2:
        raise ValueError("check_operator needs at least two inputs")
    outputs, op = await _run_plain(make, inputs, cancel_rng=None)
    _check_outputs(
        "end propagates forward after flushing", inputs, outputs, expected, flatten, lossless
    )
    if statistics:
        _check_statistics(op, inputs, max_buffered)
    cancelled_outputs, _ = await _run_plain(make, inputs, cancel_rng=random.Random(seed))
    _check_outputs(
        "cancellation loses nothing already accepted",
        inputs,
        cancelled_outputs,
        expected,
        flatten,
        lossless,
    )
    await _check_abandonment(make, inputs)
    await _check_crash(make, inputs)
    return outputs


def _check_outputs(
    clause: str,
    inputs: Sequence[Any],
    outputs: list[Any],
    expected: Sequence[Any] | None,
    flatten: Callable[[Sequence[Any]], Iterable[Any]] | None,
    lossless: bool,
) -> None:
    if expected is not None:
        _require(outputs == list(expected), clause, f"expected {list(expected)!r}, got {outputs!r}")
        return
    if flatten is None and expected is None and not lossless:
        return
    carried = list(flatten(outputs)) if flatten is not None else outputs
    if lossless:
        _require(carried == list(inputs), clause, f"items lost or reordered: {carried!r}")
    else:
        it = iter(inputs)
        _require(
            all(x in it for x in carried), clause, f"not a subsequence of the inputs: {carried!r}"
        )


async def _run_plain(
    make: Factory, inputs: Sequence[Any], *, cancel_rng: random.Random | None
) -> tuple[list[Any], Any]:
    op = make()
    up_send, up_receive = trio.open_memory_channel[Any](0)
    down_send, down_receive = trio.open_memory_channel[Any](0)
    outputs: list[Any] = []
    returned = False

    async def run_op(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal returned
        await op(up_receive, down_send, task_status=task_status)
        returned = True

    async def produce() -> None:
        async with up_send:
            for item in inputs:
                await up_send.send(item)

    async with trio.open_nursery() as nursery:
        await nursery.start(run_op)
        nursery.start_soon(produce)
        async with down_receive:
            attempt = 0
            while True:
                attempt += 1
                # Every other receive is a plain one, so a timed operator
                # under an autojump clock sees its consumer block and time
                # can move on.
                if cancel_rng is None or attempt % 2 == 0:
                    try:
                        outputs.append(await down_receive.receive())
                    except trio.EndOfChannel:
                        break
                    continue
                with trio.CancelScope() as scope:
                    nursery.start_soon(_cancel_after, scope, cancel_rng.randrange(4))
                    try:
                        outputs.append(await down_receive.receive())
                    except trio.EndOfChannel:
                        scope.cancel()
                        break
                    scope.cancel()
    _require(returned, "end propagates forward", "the operator did not return after the end")
    _require(
        up_send.statistics().open_receive_channels == 0,
        "it owns both ends",
        "the receive end it was given is still open after it returned",
    )
    return outputs, op


async def _cancel_after(scope: trio.CancelScope, checkpoints: int) -> None:
    for _ in range(checkpoints):
        await trio.lowlevel.checkpoint()
    scope.cancel()


def _check_statistics(op: Any, inputs: Sequence[Any], max_buffered: int | None) -> None:
    clause = "statistics() returns a frozen attrs snapshot"
    method = getattr(op, "statistics", None)
    _require(callable(method), clause, "the operator has no statistics() method")
    assert method is not None
    snap = method()
    _require(attrs.has(type(snap)), clause, f"{type(snap).__name__} is not an attrs class")
    try:
        snap.items_in = -1
    except attrs.exceptions.FrozenInstanceError:
        pass
    else:
        raise ContractViolation(f"operator contract, {clause}: the snapshot is mutable")
    balance = snap.items_out + snap.dropped + snap.filtered + snap.buffered
    _require(
        snap.items_in == balance,
        "conservation (in == out + dropped + filtered + buffered)",
        f"{snap!r}",
    )
    _require(snap.items_in == len(inputs), clause, f"items_in={snap.items_in}, fed {len(inputs)}")
    _require(snap.buffered == 0, clause, f"{snap.buffered} items still buffered after the end")
    if max_buffered is not None:
        _require(
            snap.buffered_peak <= max_buffered,
            "bounds are in items",
            f"buffered_peak={snap.buffered_peak} exceeds {max_buffered}",
        )


async def _check_abandonment(make: Factory, inputs: Sequence[Any]) -> None:
    clause = "a closed downstream makes it return normally and close its upstream end"
    op = make()
    up_send, up_receive = trio.open_memory_channel[Any](0)
    down_send, down_receive = trio.open_memory_channel[Any](0)
    broken = False

    async def produce() -> None:
        nonlocal broken
        async with up_send:
            try:
                while True:
                    for item in inputs:
                        await up_send.send(item)
            except trio.BrokenResourceError:
                broken = True

    try:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(produce)
                nursery.start_soon(op, up_receive, down_send)
                async with down_receive:
                    await down_receive.receive()
    except Exception as error:
        raise ContractViolation(
            f"operator contract, {clause}: it raised {error!r} instead of returning"
        ) from error
    _require(broken, clause, "upstream never saw BrokenResourceError")


async def _check_crash(make: Factory, inputs: Sequence[Any]) -> None:
    clause = "a crash propagates with the original exception, never as a clean end"

    async def crashing() -> AsyncIterator[Any]:
        for item in inputs:
            yield item
        raise _Crash("injected by check_operator")

    clean_end = False
    try:
        with trio.fail_after(60):
            async with open_pipeline(crashing(), make()) as out:
                try:
                    async for _ in out:
                        pass
                    clean_end = True
                except StreamAborted:
                    pass
    except _Crash:
        pass
    except BaseException as error:
        raise ContractViolation(
            f"operator contract, {clause}: the pipeline raised {error!r} instead"
        ) from error
    else:
        raise ContractViolation(f"operator contract, {clause}: the pipeline did not raise")
    _require(not clean_end, clause, "the consumer saw a clean end after an upstream crash")

    # Outside a pipeline nobody cancels the stage for us: fed from a channel
    # that ends in StreamAborted, the operator itself must not end cleanly.
    op = make()
    up_send: FlowSendChannel[Any]
    up_receive: FlowReceiveChannel[Any]
    up_send, up_receive = _open_stage_channel(len(inputs))
    down_send, down_receive = trio.open_memory_channel[Any](len(inputs) * 4 + 4)
    await up_send.send_all(list(inputs))
    up_send._abort(_Crash("injected by check_operator"))
    try:
        with trio.fail_after(60):
            await op(up_receive, down_send)
    except BaseException as error:
        if not _contains(error, StreamAborted):
            raise ContractViolation(
                f"operator contract, {clause}: upstream aborted but it raised {error!r}"
            ) from error
    else:
        raise ContractViolation(
            f"operator contract, {clause}: upstream aborted (StreamAborted) but it returned normally"
        )
    finally:
        down_receive.close()


def _contains(error: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(leaf, kind) for leaf in _leaves(error))
