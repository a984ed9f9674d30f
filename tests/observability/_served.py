"""The test tools (tests/http/_tools.py) as a ``flowkit serve`` target."""

from tests.http._tools import make_server

server, probe = make_server()
