"""The handshake era's asker alone, on the mock clock: answers, timeouts, cancellation.

A tool waiting for its client never hangs: the answer resumes it, a wrong
answer is an ``InvalidClientResponse``, no answer is a
``ClientRequestTimeout`` after ``ask_timeout`` (and the client is told to
cancel), and a cancelled call stops waiting at once; in every case the core
forgets the request, so a response arriving later is ignored.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson
import pytest
import trio
import trio.lowlevel
import trio.testing

from flowkit.mcp import (
    Answer,
    ClientRequestTimeout,
    Endpoint,
    EndpointConfig,
    InvalidClientResponse,
    Reply,
    StartCall,
    Tool,
    ToolContext,
)
from flowkit_http._asker import LiveAsker, check_request_state_keys
from flowkit_http._outbox import ConflatingOutbox, Outbox, open_outbox

from ..flowkit.mcp._client import Client, FakeClock, counter_ids, sse_data

CAPS = {"elicitation": {}, "roots": {}}
FORM = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


async def pick(ctx: ToolContext) -> int:
    answer = await ctx.elicit("n?", FORM)
    assert answer.content is not None
    return int(answer.content["n"])


def setup(outbox: Outbox | None = None) -> tuple[Endpoint, Client, StartCall, LiveAsker, Outbox]:
    endpoint = Endpoint(
        EndpointConfig(ask_timeout=30),
        [Tool.from_function(pick)],
        clock=FakeClock(),
        new_session_id=counter_ids(),
    )
    client = Client(endpoint)
    reply = client.request(
        "initialize", {"protocolVersion": "2025-11-25", "capabilities": CAPS, "clientInfo": {}}
    )
    assert isinstance(reply, Reply)
    client.session_id = dict(reply.headers)[b"mcp-session-id"].decode()
    action = client.call("pick")
    assert isinstance(action, StartCall)
    action.stream.open()
    outbox = outbox or open_outbox("lossless", max_events=8, max_logs=8)
    asker = LiveAsker(endpoint, action.stream, outbox, endpoint.config.ask_timeout)
    return endpoint, client, action, asker, outbox


async def sent(outbox: Outbox) -> list[Any]:
    return [sse_data(event) for event in await outbox.receive_some()]


def answer(client: Client, asker: LiveAsker, ask_id: str, result: Any) -> None:
    action = client.post(orjson.dumps({"jsonrpc": "2.0", "id": ask_id, "result": result}))
    assert isinstance(action, Answer), action
    asker.deliver(action)


async def test_the_answer_resumes_the_tool(autojump_clock: trio.testing.MockClock) -> None:
    _, client, action, asker, outbox = setup()
    got: list[int] = []
    async with trio.open_nursery() as nursery:

        async def tool() -> None:
            got.append(await pick(action.context(asker)))

        nursery.start_soon(tool)
        [request] = await sent(outbox)
        assert request["method"] == "elicitation/create"
        await trio.sleep(5)  # the user thinks
        answer(client, asker, request["id"], {"action": "accept", "content": {"n": 4}})
    assert got == [4]


async def test_a_wrong_answer_is_a_clear_error(autojump_clock: trio.testing.MockClock) -> None:
    _, client, action, asker, outbox = setup()
    async with trio.open_nursery() as nursery:

        async def tool() -> None:
            with pytest.raises(InvalidClientResponse, match="requested schema"):
                await pick(action.context(asker))

        nursery.start_soon(tool)
        [request] = await sent(outbox)
        answer(client, asker, request["id"], {"action": "accept", "content": {"n": "four"}})


async def test_no_answer_times_out_and_cancels_the_request(
    autojump_clock: trio.testing.MockClock,
) -> None:
    endpoint, client, action, asker, outbox = setup()
    async with trio.open_nursery() as nursery:

        async def tool() -> None:
            with pytest.raises(ClientRequestTimeout, match="did not answer elicitation/create"):
                await pick(action.context(asker))

        nursery.start_soon(tool)
        [request] = await sent(outbox)
        start = trio.current_time()
        [cancelled] = await sent(outbox)
        assert trio.current_time() - start == pytest.approx(30)
        assert cancelled["method"] == "notifications/cancelled"
        assert cancelled["params"]["requestId"] == request["id"]
    assert endpoint.state.asks == {}
    late = client.post(orjson.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {}}))
    assert late == Reply(202)  # too late: ignored


async def test_a_cancelled_call_stops_waiting_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    endpoint, _, action, asker, outbox = setup()
    with trio.move_on_after(3) as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pick, action.context(asker))
            await sent(outbox)
    assert scope.cancelled_caught
    assert trio.current_time() == pytest.approx(3)
    assert endpoint.state.asks == {}  # forgotten: no hang, nothing left behind


async def test_a_conflating_outbox_never_drops_a_request(
    autojump_clock: trio.testing.MockClock,
) -> None:
    outbox = ConflatingOutbox(max_logs=1)
    _, client, action, asker, _ = setup(outbox)
    for n in range(3):
        outbox.add("log", b"data: log %d\n\n" % n)  # evicts older logs, never the request
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pick, action.context(asker))
        await trio.lowlevel.checkpoint()
        for n in range(3, 6):
            outbox.add("log", b"data: log %d\n\n" % n)
        events = await outbox.receive_some()
        assert b"elicitation/create" in events[0]
        assert events[1:] == [b"data: log 5\n\n"]
        request = sse_data(events[0])
        answer(client, asker, request["id"], {"action": "accept", "content": {"n": 1}})


def test_a_per_process_request_state_key_is_logged_and_refused_when_shared(
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint, *_ = setup()
    with caplog.at_level("INFO", logger="flowkit_http"):
        check_request_state_keys(endpoint, shared=False)
    assert "random per-process key" in caplog.text
    assert "of pick" in caplog.text
    with pytest.raises(RuntimeError, match="configure the same keys on every instance"):
        check_request_state_keys(endpoint, shared=True)
    keyed = Endpoint(EndpointConfig(request_state_keys=(b"k" * 32,)), [Tool.from_function(pick)])
    check_request_state_keys(keyed, shared=True)  # configured: nothing to say
    check_request_state_keys(Endpoint(), shared=True)  # no tool asks: nothing to say


async def test_url_mode_and_its_completion_notification(
    autojump_clock: trio.testing.MockClock,
) -> None:
    _, client, action, asker, outbox = setup()
    action = StartCall(**{**attrs.asdict(action, recurse=False), "client_capabilities": URL_CAPS})
    ctx = action.context(asker, asker.notify)
    done: list[bool] = []

    async def tool() -> None:
        consent = await ctx.elicit_url("Connect your account", "https://auth.example/x")
        assert consent.accepted
        done.append(await ctx.elicitation_complete("e-1"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(tool)
        [request] = await sent(outbox)
        assert request["params"]["mode"] == "url"
        assert request["params"]["elicitationId"] == f"{ctx.call_id}-1"
        answer(client, asker, request["id"], {"action": "accept"})
        [note] = await sent(outbox)
    assert note == {
        "jsonrpc": "2.0",
        "method": "notifications/elicitation/complete",
        "params": {"elicitationId": "e-1"},
    }
    assert done == [True]
    # Without a stream to carry it (the stateless era), nothing goes out.
    assert not await ToolContext(
        request_id=1, call_id="c", protocol_version="x"
    ).elicitation_complete("e")


URL_CAPS = {"elicitation": {"url": {}}}
