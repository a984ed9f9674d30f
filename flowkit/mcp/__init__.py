"""flowkit.mcp: a sans-IO core for MCP servers over Streamable HTTP.

Bytes and headers go in, frozen actions and bytes come out; there is no I/O,
no event loop and no clock read here (time and session ids are injected), so
every rule of the protocol can be tested and fuzzed synchronously. The HTTP
adapter (``flowkit_http``) moves the bytes and runs the tools.

Typical use, from an adapter's point of view::

    endpoint = Endpoint(EndpointConfig(), tools)
    reply = endpoint.check_request_head(method, headers)      # before the body
    action = endpoint.receive_request(method, headers, body)  # Reply | StartCall | ...

A name is exported here if a user of the core or an adapter author needs it,
and each is listed in docs/mcp.md ("Public names", with what moved); the rest
stays in the private modules.
"""

from ._actions import (
    Action,
    Answer,
    Cancel,
    Invoke,
    OpenListenStream,
    Reply,
    Resume,
    StartCall,
)
from ._asks import (
    ClientRequest,
    ClientRequestError,
    ClientRequestTimeout,
    ElicitResult,
    InvalidClientResponse,
    MissingClientCapability,
    Root,
    SamplingResult,
    elicitation_request,
    result_of,
    roots_request,
    sampling_request,
    url_elicitation_request,
)
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
from ._headers import RequestHead, host_allowed, origin_allowed, parse_head
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
from ._prompts import Prompt, PromptArgument, PromptSet, prompt_message
from ._resources import Resource, ResourceSet, ResourceTemplate
from ._shared import (
    CallEnded,
    CallStarted,
    Change,
    EventAppended,
    Loaded,
    SessionClosed,
    SessionRecord,
    SessionSaved,
    SessionTouched,
    SharedStore,
    StateKeys,
    StreamAttached,
    StreamDetached,
)
from ._sse import EventId, encode_comment
from ._sse_decoder import ServerSentEvent, SSEComment, SSEDecoder
from ._stream import (
    SSE_HEADERS,
    OutgoingStream,
)
from ._toolcontext import InputRequired, ToolContext
from ._tools import HeaderParam, Policy, Tool, ToolSet, header_params
from ._versions import (
    LATEST_HANDSHAKE_VERSION,
    VERSIONS,
    VersionPolicy,
)

__all__ = [
    "HEADER_MISMATCH",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "LATEST_HANDSHAKE_VERSION",
    "LOCALHOST_HOSTS",
    "LOCALHOST_ORIGINS",
    "METHOD_NOT_FOUND",
    "MISSING_REQUIRED_CLIENT_CAPABILITY",
    "PARSE_ERROR",
    "RESOURCE_NOT_FOUND",
    "SERVER_ERROR",
    "SSE_HEADERS",
    "UNSUPPORTED_PROTOCOL_VERSION",
    "VERSIONS",
    "Action",
    "Answer",
    "Authenticator",
    "CallEnded",
    "CallStarted",
    "Cancel",
    "Change",
    "ClientRequest",
    "ClientRequestError",
    "ClientRequestTimeout",
    "Connection",
    "ElicitResult",
    "Endpoint",
    "EndpointConfig",
    "EventAppended",
    "EventId",
    "EventStore",
    "HeaderParam",
    "InMemoryEventStore",
    "InputRequired",
    "InvalidClientResponse",
    "Invoke",
    "ListKind",
    "Loaded",
    "LocalProtocolError",
    "Message",
    "MissingClientCapability",
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
    "Root",
    "SSEComment",
    "SSEDecoder",
    "SamplingResult",
    "ServerSentEvent",
    "SessionClosed",
    "SessionRecord",
    "SessionSaved",
    "SessionTouched",
    "SharedStore",
    "StartCall",
    "StateKeys",
    "StreamAttached",
    "StreamDetached",
    "StreamHold",
    "Tool",
    "ToolContext",
    "ToolSet",
    "VersionPolicy",
    "audio_content",
    "describe_item",
    "elicitation_request",
    "embedded_resource",
    "encode_comment",
    "encode_error",
    "encode_notification",
    "encode_result",
    "error_result",
    "header_params",
    "host_allowed",
    "image_content",
    "json_value",
    "origin_allowed",
    "parse_head",
    "parse_message",
    "prompt_message",
    "resource_contents",
    "resource_link",
    "result_of",
    "roots_request",
    "sampling_request",
    "text_content",
    "to_call_result",
    "tool_result",
    "url_elicitation_request",
    "with_delivery",
]
