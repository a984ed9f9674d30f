"""The operator contract, as an executable check.

Each clause is a separate *step* on a fresh operator (``"end"``,
``"statistics"``, ``"acks"``, ``"cancellation"``, ``"abandonment"``, ``"crash"``), run over plain trio
memory channels (so an operator that only works inside a flowkit pipeline
fails) except the crash step, which needs the pipeline runner.

Every step ends. Its inputs are bounded (the abandonment step, which feeds
a live upstream, feeds at most :data:`_ABANDON_ROUNDS` rounds of the inputs),
and each runs under a time limit on trio's clock, so a step that cannot
progress fails with a :class:`ContractViolation` naming it instead of
hanging: under ``MockClock(autojump_threshold=0)`` a stuck step fails in
no real time at all.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import random
import reprlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import trio
import trio.testing

from .._channel import FlowReceiveChannel, FlowSendChannel, _open_stage_channel
from .._exceptions import ContractViolation, StreamAborted
from .._pipeline import open_pipeline
from .._tasks import _leaves, unwrapped

__all__ = ["ContractViolation", "check_operator"]

Factory = Callable[[], Callable[..., Any]]
T = TypeVar("T")

#: The steps of :func:`check_operator`, in the order they run. All but
#: ``"end"`` (whose outputs the others are compared with) can be skipped.
_STEPS = ("end", "statistics", "acks", "cancellation", "abandonment", "crash")

#: Default time limit of each step, in seconds on trio's clock.
_TIME_LIMIT = 60.0
#: The abandonment step's upstream feeds at most this many rounds of the
#: inputs, pausing after each: 1 ms, doubling (over two hours of quiet by the
#: last), so an operator that emits only after a quiet period (a debounce, a
#: time window) gets one. Then it stays open and silent, as a live upstream
#: that went quiet would.
_ABANDON_ROUNDS = 24
_FIRST_PAUSE = 0.001

_show = reprlib.Repr()
_show.maxlist = 8
_show.maxother = 60


class _Crash(Exception):
    """The error the crash step injects upstream."""


class _Status:
    """A ``task_status`` that records how often ``started()`` was called."""

    def __init__(self) -> None:
        self.calls = 0

    def started(self, value: object = None) -> None:
        self.calls += 1


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
    skip: Iterable[str] = (),
    time_limit: float | Mapping[str, float] = _TIME_LIMIT,
) -> list[Any]:
    """Check that the operators ``make()`` returns honour the contract.

    Args:
        make: returns a fresh operator each call (one object is one stage).
        inputs: the items to feed; at least two.
        expected: the exact outputs for ``inputs``, when deterministic.
            Without it (and without ``flatten``) the outputs must *equal*
            the inputs, as for a pass-through stage.
        flatten: maps the output list to the input items it carries (for
            batching operators, ``lambda out: [x for b in out for x in b]``).
            With ``lossless`` the flattened outputs must equal ``inputs``.
        lossless: whether every input must come out (in order); set False
            for dropping operators (then outputs must be a subsequence).
        max_buffered: a bound ``statistics().buffered_peak`` must respect.
        statistics: whether to require a ``statistics()`` snapshot (False is
            the same as skipping the ``"statistics"`` and ``"acks"`` steps).
        seed: makes the cancellation points reproducible.
        skip: steps not to run, for an operator whose semantics a step
            does not fit (``"abandonment"`` for one that stops sending after
            its first output, for example): any of ``"statistics"``, ``"acks"``,
            ``"cancellation"``, ``"abandonment"``, ``"crash"``. The
            ``"end"`` step, the plain run, always runs.
        time_limit: seconds on trio's clock each step may take (default 60),
            or a mapping from step name to its limit (the others keep the
            default), for an operator whose semantics need longer: a
            throttle at one item an hour. Run timed operators' checks under
            ``trio.testing.MockClock(autojump_threshold=0)`` and virtual
            time makes any limit cost nothing.

    Returns:
        The outputs of the plain run, for further assertions.

    Raises:
        ContractViolation: naming the step and the clause that failed,
            including a step that did not finish within its time limit.
        ValueError: fewer than two inputs, or an unknown step name.
    """
    if len(inputs) < 2:
        raise ValueError("check_operator needs at least two inputs")
    skipped = set(skip)
    if unknown := skipped - set(_STEPS[1:]):
        raise ValueError(
            f"check_operator cannot skip {sorted(unknown)}: the steps that can be skipped are "
            f"{list(_STEPS[1:])}"
        )
    if not statistics:
        skipped.update(("statistics", "acks"))
    limits = _limits(time_limit)
    op = make()
    _check_signature(op)

    outputs = await _step("end", limits, lambda: _run_plain(op, inputs, cancel_rng=None))
    _check_outputs(
        "end propagates forward after flushing", inputs, outputs, expected, flatten, lossless
    )
    if "statistics" not in skipped:
        _check_statistics(op, inputs, max_buffered)
    if "acks" not in skipped and "statistics" not in skipped:
        await _step("acks", limits, lambda: _check_acks(make(), inputs))
    if "cancellation" not in skipped:
        cancelled_outputs = await _step(
            "cancellation",
            limits,
            lambda: _run_plain(make(), inputs, cancel_rng=random.Random(seed)),
        )
        _check_outputs(
            "cancellation loses nothing already accepted",
            inputs,
            cancelled_outputs,
            expected,
            flatten,
            lossless,
        )
    if "abandonment" not in skipped and outputs:
        # An operator learns that downstream left only when it sends, so
        # one that emitted nothing in the plain run cannot show it.
        await _step("abandonment", limits, lambda: _check_abandonment(make, inputs))
    if "crash" not in skipped:
        await _step("crash", limits, lambda: _check_crash(make, inputs))
    return outputs


def _limits(time_limit: float | Mapping[str, float]) -> dict[str, float]:
    if not isinstance(time_limit, Mapping):
        return dict.fromkeys(_STEPS, float(time_limit))
    if unknown := set(time_limit) - set(_STEPS):
        raise ValueError(f"time_limit names unknown steps {sorted(unknown)}; steps: {list(_STEPS)}")
    return {step: float(time_limit.get(step, _TIME_LIMIT)) for step in _STEPS}


async def _step(name: str, limits: Mapping[str, float], run: Callable[[], Awaitable[T]]) -> T:
    """Run one step under its time limit; any failure names the step."""
    limit = limits[name]
    try:
        with trio.fail_after(limit):
            return await run()
    except trio.TooSlowError:
        raise ContractViolation(
            f"operator contract, step {name!r}: it did not finish within {limit:g} s on trio's "
            "clock, so the operator stopped making progress. If its semantics need longer, pass "
            f"time_limit={{{name!r}: seconds}}; if this step does not apply to it, "
            f"skip={{{name!r}}}"
        ) from None
    except ContractViolation:
        raise
    except BaseException as error:
        if not isinstance(error, Exception):
            raise  # KeyboardInterrupt, a cancellation from outside: not ours
        real = unwrapped(error) if isinstance(error, BaseExceptionGroup) else error
        raise ContractViolation(
            f"operator contract, step {name!r}: the operator raised {real!r}"
        ) from real


def _check_signature(op: Callable[..., Any]) -> None:
    """The operator accepts ``task_status=``, so ``nursery.start`` can run it."""
    try:
        parameters = inspect.signature(op).parameters.values()
    except (TypeError, ValueError):
        return  # not introspectable (a C callable): the runs will tell
    if any(p.name == "task_status" or p.kind is p.VAR_KEYWORD for p in parameters):
        return
    raise ContractViolation(
        f"operator contract, it can be started with nursery.start: {op!r} takes no "
        "task_status= argument. Add `*, task_status=trio.TASK_STATUS_IGNORED` and call "
        "task_status.started() once it runs (open_pipeline does not need it; "
        "nursery.start(op, receive, send) does)"
    )


def _check_outputs(
    clause: str,
    inputs: Sequence[Any],
    outputs: list[Any],
    expected: Sequence[Any] | None,
    flatten: Callable[[Sequence[Any]], Iterable[Any]] | None,
    lossless: bool,
) -> None:
    if expected is not None:
        _require(
            outputs == list(expected),
            clause,
            f"expected= {_show.repr(list(expected))}, got {_show.repr(outputs)}",
        )
        return
    if flatten is None and not lossless:
        return
    carried = list(flatten(outputs)) if flatten is not None else outputs
    if lossless and flatten is None:
        _require(
            carried == list(inputs),
            clause,
            "without expected= the outputs must equal the inputs (pass expected= for an "
            "operator that changes items, flatten= for one that batches them, "
            f"lossless=False for one that drops some): inputs {_show.repr(list(inputs))}, "
            f"outputs {_show.repr(carried)}",
        )
    elif lossless:
        _require(
            carried == list(inputs),
            clause,
            "the flattened outputs must equal the inputs, every item once and in order: "
            f"inputs {_show.repr(list(inputs))}, flattened {_show.repr(carried)}",
        )
    else:
        it = iter(inputs)
        _require(
            all(x in it for x in carried),
            clause,
            f"not a subsequence of the inputs: {_show.repr(carried)}",
        )


async def _run_plain(
    op: Callable[..., Any], inputs: Sequence[Any], *, cancel_rng: random.Random | None
) -> list[Any]:
    up_send, up_receive = trio.open_memory_channel[Any](0)
    down_send, down_receive = trio.open_memory_channel[Any](0)
    outputs: list[Any] = []
    status = _Status()
    returned = False

    async def run_op() -> None:
        nonlocal returned
        await op(up_receive, down_send, task_status=status)
        returned = True

    async def produce() -> None:
        async with up_send:
            for item in inputs:
                try:
                    await up_send.send(item)
                except trio.BrokenResourceError:
                    return  # it ended early (a take) and closed its receive end

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_op)
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
        status.calls == 1,
        "it can be started with nursery.start",
        f"task_status.started() was called {status.calls} times, not once",
    )
    _require(
        up_send.statistics().open_receive_channels == 0,
        "it owns both ends",
        "the receive end it was given is still open after it returned",
    )
    return outputs


async def _check_acks(op: Any, inputs: Sequence[Any]) -> None:
    """``buffered`` counts every item held, as an acked pipeline relies on.

    Fed every input with upstream left open, the operator goes quiet; if its
    statistics then say it holds nothing, ending upstream must bring out
    nothing more. An operator that flushed items it did not count would let
    an :class:`~flowkit.AckTracker` acknowledge them before they were sent.
    """
    clause = "statistics().buffered counts every item held (acked pipelines rely on it)"
    if getattr(op, "_acks_opaque", False):
        return  # it says it cannot run in an acked pipeline, which refuses it
    up_send, up_receive = trio.open_memory_channel[Any](math.inf)
    down_send, down_receive = trio.open_memory_channel[Any](math.inf)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(op, up_receive, down_send)
        for item in inputs:
            up_send.send_nowait(item)
        await trio.testing.wait_all_tasks_blocked()
        stats = op.statistics()
        while True:  # what it emitted before going quiet is not late
            try:
                down_receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        _require(
            stats.items_in == stats.items_out + stats.dropped + stats.filtered + stats.buffered,
            clause,
            f"conservation broken while running: {stats!r}",
        )
        await up_send.aclose()
        async with down_receive:
            late = [item async for item in down_receive]
    _require(
        stats.buffered > 0 or not late,
        clause,
        f"it said buffered == 0 while quiet, then emitted {_show.repr(late)} at the end",
    )


async def _cancel_after(scope: trio.CancelScope, checkpoints: int) -> None:
    for _ in range(checkpoints):
        await trio.lowlevel.checkpoint()
    scope.cancel()


def _check_statistics(op: Any, inputs: Sequence[Any], max_buffered: int | None) -> None:
    clause = "statistics() returns a frozen attrs snapshot"
    method = getattr(op, "statistics", None)
    _require(
        callable(method),
        clause,
        "the operator has no statistics() method (pass statistics=False if it keeps none)",
    )
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
    returned = False

    async def produce() -> None:
        # A live upstream: it never ends the stream, it only goes quiet.
        async with up_send:
            pause = _FIRST_PAUSE
            try:
                for _ in range(_ABANDON_ROUNDS):
                    for item in inputs:
                        await up_send.send(item)
                    await trio.sleep(pause)
                    pause *= 2
            except trio.BrokenResourceError:
                return
            await trio.sleep_forever()  # the step's time limit ends this

    async def run_op(stop: trio.CancelScope) -> None:
        nonlocal returned
        await op(up_receive, down_send)
        returned = True
        stop.cancel()  # its upstream end is closed (checked below): stop feeding

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce)
            nursery.start_soon(run_op, nursery.cancel_scope)
            async with down_receive:
                with contextlib.suppress(trio.EndOfChannel):  # it may end by itself
                    await down_receive.receive()  # then leave, as a vanished client does
    except Exception as error:
        real = unwrapped(error) if isinstance(error, BaseExceptionGroup) else error
        raise ContractViolation(
            f"operator contract, {clause}: it raised {real!r} instead of returning"
        ) from real
    _require(
        up_send.statistics().open_receive_channels == 0,
        clause,
        "it returned but left its receive end open, so upstream never sees BrokenResourceError",
    )


async def _check_crash(make: Factory, inputs: Sequence[Any]) -> None:
    clause = "a crash propagates with the original exception, never as a clean end"

    async def crashing() -> AsyncIterator[Any]:
        for item in inputs:
            yield item
        raise _Crash("injected by check_operator")

    clean_end = False
    try:
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
        if _cancelled(error):
            raise  # the step's time limit
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
    down_send, down_receive = trio.open_memory_channel[Any](math.inf)
    await up_send.send_all(list(inputs))
    up_send._abort(_Crash("injected by check_operator"))
    try:
        await op(up_receive, down_send)
    except BaseException as error:
        if _cancelled(error):
            raise
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


def _cancelled(error: BaseException) -> bool:
    """Whether ``error`` is only cancellation (the step's time limit running out)."""
    return all(isinstance(leaf, trio.Cancelled) for leaf in _leaves(error))
