"""The test tools (tests/integration/http/_tools.py), plus one that logs, as a ``flowkit serve`` target."""

import logging

from tests.integration.http._tools import make_server

server, probe = make_server()


@server.tool
def noted(text: str) -> str:
    """Log a line while the call runs."""
    logging.getLogger("tests.noted").warning("noting %s", text)
    return text
