"""flowkit.mcp: a sans-IO core for MCP servers over Streamable HTTP.

Bytes and headers go in, frozen actions and bytes come out; there is no I/O,
no event loop and no clock read here (time and session ids are injected), so
every rule of the protocol can be tested and fuzzed synchronously. The HTTP
adapter (``flowkit_http``) moves the bytes and runs the tools.

Typical use, from an adapter's point of view::

    endpoint = Endpoint(EndpointConfig(), tools)
    reply = endpoint.check_request_head(method, headers)      # before the body
    action = endpoint.receive_request(method, headers, body)  # Reply | StartCall | ...
"""

from ._actions import (
    Action,
    Cancel,
    Headers,
    Invoke,
    OpenListenStream,
    Reply,
    Resume,
    StartCall,
    error_reply,
    json_reply,
)
from ._completion import MAX_COMPLETIONS, Completer
from ._config import LOCALHOST_HOSTS, LOCALHOST_ORIGINS, Authenticator, EndpointConfig
from ._connection import Connection
from ._content import (
    Result,
    audio_content,
    describe_item,
    embedded_resource,
    error_result,
    image_content,
    json_value,
    resource_contents,
    resource_link,
    text_content,
    to_call_result,
    tool_result,
    with_delivery,
)
from ._endpoint import Endpoint, ListKind
from ._errors import (
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    PARSE_ERROR,
    RESOURCE_NOT_FOUND,
    SERVER_ERROR,
    UNSUPPORTED_PROTOCOL_VERSION,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from ._events import EventStore, InMemoryEventStore, StreamHold
from ._headers import Binding, RequestHead, accepts, host_allowed, origin_allowed, parse_head
from ._jsonrpc import (
    Message,
    Notification,
    Request,
    RequestId,
    Response,
    encode_error,
    encode_notification,
    encode_result,
    parse_message,
)
from ._levels import LOG_LEVELS
from ._prompts import Prompt, PromptArgument, PromptSet, prompt_message
from ._resources import Resource, ResourceSet, ResourceTemplate
from ._schema import schema_from_function
from ._sessions import (
    SESSION_TRANSITIONS,
    Session,
    SessionEvent,
    SessionRegistry,
    SessionState,
)
from ._sse import EventId, encode_comment, encode_event, encode_json_event, parse_event_id
from ._sse_decoder import ServerSentEvent, SSEComment, SSEDecoder
from ._stream import (
    MAX_PROGRESS_TOKEN,
    SSE_HEADERS,
    STREAM_TRANSITIONS,
    OutgoingStream,
    StreamInput,
    StreamState,
)
from ._tools import HeaderParam, Policy, Tool, ToolSet, validate_tool_name
from ._versions import (
    LATEST_HANDSHAKE_VERSION,
    VERSIONS,
    VersionPolicy,
    negotiate_version,
)

__all__ = [
    "HEADER_MISMATCH",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "LATEST_HANDSHAKE_VERSION",
    "LOCALHOST_HOSTS",
    "LOCALHOST_ORIGINS",
    "LOG_LEVELS",
    "MAX_COMPLETIONS",
    "MAX_PROGRESS_TOKEN",
    "METHOD_NOT_FOUND",
    "MISSING_REQUIRED_CLIENT_CAPABILITY",
    "PARSE_ERROR",
    "RESOURCE_NOT_FOUND",
    "SERVER_ERROR",
    "SESSION_TRANSITIONS",
    "SSE_HEADERS",
    "STREAM_TRANSITIONS",
    "UNSUPPORTED_PROTOCOL_VERSION",
    "VERSIONS",
    "Action",
    "Authenticator",
    "Binding",
    "Cancel",
    "Completer",
    "Connection",
    "Endpoint",
    "EndpointConfig",
    "EventId",
    "EventStore",
    "HeaderParam",
    "Headers",
    "InMemoryEventStore",
    "Invoke",
    "ListKind",
    "LocalProtocolError",
    "Message",
    "Notification",
    "OpenListenStream",
    "OutgoingStream",
    "Policy",
    "Prompt",
    "PromptArgument",
    "PromptSet",
    "ProtocolError",
    "RemoteProtocolError",
    "Reply",
    "Request",
    "RequestHead",
    "RequestId",
    "Resource",
    "ResourceSet",
    "ResourceTemplate",
    "Response",
    "Result",
    "Resume",
    "SSEComment",
    "SSEDecoder",
    "ServerSentEvent",
    "Session",
    "SessionEvent",
    "SessionRegistry",
    "SessionState",
    "StartCall",
    "StreamHold",
    "StreamInput",
    "StreamState",
    "Tool",
    "ToolSet",
    "VersionPolicy",
    "accepts",
    "audio_content",
    "describe_item",
    "embedded_resource",
    "encode_comment",
    "encode_error",
    "encode_event",
    "encode_json_event",
    "encode_notification",
    "encode_result",
    "error_reply",
    "error_result",
    "host_allowed",
    "image_content",
    "json_reply",
    "json_value",
    "negotiate_version",
    "origin_allowed",
    "parse_event_id",
    "parse_head",
    "parse_message",
    "prompt_message",
    "resource_contents",
    "resource_link",
    "schema_from_function",
    "text_content",
    "to_call_result",
    "tool_result",
    "validate_tool_name",
    "with_delivery",
]
