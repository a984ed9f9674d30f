"""Running the user code of an :class:`~flowkit.mcp.Invoke` (resources, prompts, completion).

Every adapter answers an ``Invoke`` the same way: call the function, await
it if it is async, and send the reply the core builds from the value or the
exception. A failure is logged here with its traceback; the client only
learns which method failed (the exception's text may hold secrets).
"""

from __future__ import annotations

import inspect
import logging

from flowkit.mcp import InputRequired, Invoke, Reply

__all__ = ["run_invoke"]

logger = logging.getLogger("flowkit_http")


async def run_invoke(action: Invoke) -> Reply:
    """The reply to ``action``, after running its function (never raises ``Exception``)."""
    try:
        value = action.call()
        if inspect.isawaitable(value):
            value = await value
    except InputRequired as needed:  # a prompt asked its client (stateless era)
        return action.input_required(needed)
    except Exception as exc:
        reply = action.failed(exc)
        if reply.error is not None and reply.error.code == -32603:
            logger.exception("%s failed", action.method)
        return reply
    return action.reply(value)
