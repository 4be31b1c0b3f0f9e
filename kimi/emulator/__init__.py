"""Offline emulator of Kimi's "Gen B" Connect-RPC web upstream (a test oracle).

Run ``python -m kimi.emulator --port 8001 [--host 127.0.0.1]``. One app serves both the chat
host (``/apiv2``, ``/apiv2-files``) and the auth host (``/api/...``), so a gateway uses the
emulator URL as both ``base_url`` and ``auth_url``. This package imports nothing from the rest
of ``kimi``; it depends only on aiohttp, orjson and the standard library.

Public API::

    from kimi.emulator import (create_app, EmulatorState, Reply, Fault, EMULATOR,
                               mint_access_token, mint_refresh_token)
    state = EmulatorState(); app = create_app(state); assert app[EMULATOR] is state
    token = mint_access_token("user-1")         # 30-day access JWT, signature not checked
    rt = state.issue_refresh_token("user-1")    # a refresh JWT the emulator accepts
    state.replies.append(Reply(text="hi", fault=Fault("error", after=2)))

Deterministic default texts (tests may compute them):

* answer: ``f"[turn {n}] Hello from the emulator \\u2713 \\u4e2d\\u6587 \\U0001F389. You said: {prompt}"``
  where ``n`` = user messages on the chat path including this one and ``prompt`` = the
  concatenated text blocks of the request (``kimi.emulator.state.default_text``);
* reasoning (only when ``options.thinking`` is true): ``"Let me think about it \\u2026 step by step."``.

Chat stream (reference 4.5): heartbeat; ``set chat`` {id, name, createTime}; user echo
``set message``; (``append chat.files`` when file blocks are attached); assistant
``set message`` GENERATING; [``Reply.pause`` of silence, heartbeats every
``state.heartbeat_interval`` if set]; ``block.think`` set/appends when thinking; search tool
blocks + ``message.refs.searchChunks`` when ``TOOL_TYPE_SEARCH`` is declared and
``Reply.search`` is given (or the prompt contains "search"/"latest": 3 default results);
``block.text`` set + ``block.text.content`` appends (``Reply.chunk`` code points each);
``message.refs.usedSearchChunks`` (search only); ``chat.name`` = ``Reply.title``;
``message.status`` COMPLETED; ``{"eventOffset":N,"done":{}}``; end-stream frame (flag 0x02)
``{}``. Citations (search only) follow every sentence, sentence k citing result k % len:
``"e3a0"`` style ``\\ue3a0cite\\ue3a3web_search:1#k\\ue3a8``, ``"2026"`` style
``\\U0001F6E0cite\\ue3a3web_search:1#k\\U0001F3A8``. Block ids are "1", "2", ... per turn.

Files (reference 4.8): ``/apiv2-files/file/upload`` keeps each upload in ``state.files``
(``FileRecord`` with the bytes, name, content type, sha256 checksum); ``GetFileParseProgress``
answers PROCESSING ``state.parse_steps`` times per file (default 1), then SUCCESS, or FAILED
for names in ``state.parse_fail``; names in ``state.parse_never`` stay PROCESSING; names in
``state.upload_fail_names`` get HTTP 500 on upload. ``state.upload_delay`` seconds of delay per
upload; ``state.max_uploads_active`` records how many uploads overlapped at most.

Writes: each frame is its own write, unless ``state.frames_per_write`` is N > 1: then N
frames go out together (as a busy upstream's frames share a network read); whatever is
buffered goes out before any wait (``chunk_delay``, pauses, silence) and at the end.
``state.end_pause`` seconds (default 0) pass between the end-stream frame and the end of the
HTTP response (its chunked terminator), as they may over a real network.

Connections: ``state.connections`` counts the client connections that carried a request (a
connection is counted at its first request), so a test or the benchmark can tell a reused
connection from a new one.

Emulator choices where the reference is silent (documented assumptions):

* Bare JSON / malformed envelope on Chat -> HTTP 400 ``{"code":"invalid_argument"}``
  (``state.bad_frame_style = "stream"`` gives HTTP 200 + end-stream error instead).
* Other Chat request problems (unknown chat -> ``not_found``; another user's chat ->
  ``permission_denied``; unknown parent / file id, empty ids in strict mode, no content ->
  ``invalid_argument``) -> HTTP 200 with only an end-stream error frame. A rejected concurrent
  stream (``failed_precondition``/``REASON_CHAT_STREAM_PUSHING``) gets a data error frame and the
  same end-stream error. None of these consume a scripted Reply.
* A scripted ``Reply`` with ``when`` set is taken only by a chat whose prompt contains that
  text (the first such reply in the queue); others skip it and get the next one or the default.
* ``auth_error_style`` only applies to Chat; unary calls always answer HTTP 401.
* ``Fault("garbage", after=N)``: after N text events a data frame that is not JSON, then the
  end-stream frame, all in one write with the frames before it.
* Moderation (``Fault("moderation", after=N)``): after N text events
  ``set message.status`` = ``MESSAGE_STATUS_BLOCKED``, then ``done`` and end-stream ``{}``.
* CancelChat on a chat with an open stream: the stream stops at the next event boundary (or
  wakes from a pause) and ends with ``set message.status`` = ``MESSAGE_STATUS_CANCELLED``,
  ``done`` and end-stream ``{}``; the partial text stays on the message record.
* Deleted chats stay in ``state.chats`` with ``deleted=True`` (and are hidden from ListChats /
  GetChat / follow-ups); ``state.deleted`` lists them in deletion order.
* Message ``regenerate`` (resending an existing ``message.id``) is not modelled: a new user
  message is always created.

Faults (``Reply.fault`` or the magic word ``[[fault:<kind>]]`` in the prompt): ``http``
(``status``, ``code``, ``message``, ``retry_after``; returned before any stream), ``error``
(``after``, ``code`` default resource_exhausted, ``reason`` default
REASON_SERVER_OVERLOADED_FOR_FREE_USER, ``message``, ``paywall``, ``where`` "data"|"endstream",
``prelude=False`` to fail right after the heartbeat without creating a chat),
``done_then_error``, ``truncate`` (``after``; connection closed, no terminating chunk),
``split`` (``size`` bytes per write, default 1, cutting frames and UTF-8), ``coalesce``
(whole answer in one write, delays ignored), ``huge`` (one ``block.text`` set of ``size``
bytes, default 5 MiB), ``silence`` (``seconds``, default 5; heartbeats every
``heartbeat_interval`` or 1 s when ``heartbeats=True``), ``moderation`` (see above).
"""

from .app import EMULATOR, create_app
from .state import (Call, ChatRecord, EmulatorState, Fault, FileRecord, MessageRecord, Reply,
                    default_text, DEFAULT_THINK)
from .tokens import mint_access_token, mint_refresh_token

__all__ = [
    "EMULATOR", "create_app", "EmulatorState", "Reply", "Fault", "Call", "ChatRecord",
    "MessageRecord", "FileRecord", "mint_access_token", "mint_refresh_token", "default_text",
    "DEFAULT_THINK",
]
