"""Fake upstreams: real HTTP/1.1 servers on 127.0.0.1, scriptable per test, recording what reached them.

Written on raw asyncio streams rather than a web framework so that a test can make a server do
what real providers do and frameworks prevent: hang, send keep-alive blank lines or SSE comments,
stall mid-stream, or drop the connection before or in the middle of a response. All fakes share
one event loop in a background thread; tests talk to them through thread-safe methods.
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from tests import payloads


@dataclass
class Reply:
    status: int = 200
    body: bytes | None = None  # None: the flavor's canned success for the path
    headers: dict[str, str] = field(default_factory=dict)
    events: list[bytes] | None = None  # SSE events, sent one chunk each
    delay_s: float = 0.0  # before the status line
    split_body_s: float = 0.0  # send the body in two halves this far apart (two TCP segments)
    hang: bool = False  # never answer (until the test ends or the client leaves)
    drop: bool = False  # close the connection before any byte of a response
    stop_after: int | None = None  # with events: after this many, hang (or drop, with drop_mid_stream)
    drop_mid_stream: bool = False
    keepalive: bytes | None = None  # sent every keepalive_every_s while hanging (DeepSeek's queue)
    keepalive_every_s: float = 0.05
    gate: threading.Event | None = None  # hold the answer until the test sets this
    chunked: bool = False  # send the body with no content-length, in 64 KiB chunks


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    json: Any


def error(case_id: str) -> Reply:
    """A reply that replays one recorded error payload from tests/payloads.py."""
    case = next(c for c in payloads.ERROR_CASES if c.id == case_id)
    headers = {"content-type": "application/json", **case.headers}
    return Reply(status=case.status, body=case.body, headers=headers)


class _Loop:
    """One event loop in a daemon thread for every fake server in the test session."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-upstreams", daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


_LOOP: _Loop | None = None


def _loop() -> _Loop:
    global _LOOP
    if _LOOP is None:
        _LOOP = _Loop()
    return _LOOP


class FakeUpstream:
    def __init__(self, flavor: str, port: int = 0, name: str | None = None) -> None:
        self.flavor = flavor
        self.name = name or flavor  # whose canned audio it speaks (a local TTS server is flavor openai)
        self._lock = threading.Lock()
        self._scripts: dict[str, collections.deque[Reply]] = collections.defaultdict(collections.deque)
        self.requests: list[Recorded] = []
        self.client_disconnects = 0
        self.disconnected = threading.Event()  # a client left while this server was still answering
        self._release: asyncio.Event | None = None
        self._server: asyncio.Server | None = None
        self.port = _loop().run(self._start(port))  # 0: any free port
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    async def _start(self, port: int) -> int:
        self._release = asyncio.Event()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        return self._server.sockets[0].getsockname()[1]

    # -- the test's side ------------------------------------------------------------------------

    def script(self, *replies: Reply, path: str = "/chat/completions") -> None:
        """Queue replies for the next requests to `path`; after them, the canned success."""
        with self._lock:
            self._scripts[path].extend(replies)

    def calls(self, path: str = "/chat/completions") -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path.endswith(path))

    def forget_reads(self) -> None:
        """Drop the recorded GETs (a gateway's start-up checks: model lists, a balance), so a test sees
        only the requests it caused; a gateway sends nothing else as a GET."""
        with self._lock:
            self.requests = [r for r in self.requests if r.method != "GET"]

    def last(self) -> Recorded:
        with self._lock:
            return self.requests[-1]

    def reset(self) -> None:
        _loop().run(self._reset())

    async def _reset(self) -> None:
        assert self._release is not None
        self._release.set()  # free whatever still hangs from the previous test
        self._release = asyncio.Event()
        with self._lock:
            self._scripts.clear()
            self.requests.clear()
            self.client_disconnects = 0
            self.disconnected.clear()

    def close(self) -> None:
        async def stop() -> None:
            assert self._server is not None and self._release is not None
            self._release.set()
            self._server.close()

        _loop().run(stop())

    # -- the server's side ----------------------------------------------------------------------

    def _next(self, path: str) -> Reply | None:
        with self._lock:
            for suffix, queue in self._scripts.items():
                if path.endswith(suffix) and queue:
                    return queue.popleft()
        return None

    def _canned(self, path: str, streamed: bool, doc: Any = None) -> Reply:
        if path.endswith("/audio/speech"):
            return self._speech(doc if isinstance(doc, dict) else {})
        if path.endswith("/embeddings"):
            return Reply(body=payloads.EMBEDDINGS_OK[self.flavor])
        if path.endswith("/models"):
            return Reply(body=payloads.MODELS_OK[self.flavor])
        if path.endswith("/completions") and not path.endswith("/chat/completions"):  # legacy completions
            if streamed:
                return Reply(events=payloads.COMPLETIONS_STREAM_OK[self.flavor])
            return Reply(body=payloads.COMPLETIONS_OK[self.flavor])
        if streamed:
            return Reply(events=payloads.STREAM_OK[self.flavor])
        return Reply(body=payloads.CHAT_OK[self.flavor])

    def _speech(self, doc: dict[str, Any]) -> Reply:
        """Audio as the provider would send it: OpenAI and a local TTS server any format, Groq WAV only."""
        form = doc.get("response_format") or "mp3"
        if self.flavor == "groq" and form != "wav":
            return error("groq-400-speech-format")
        if self.flavor not in ("openai", "groq"):  # no /audio/speech there (Gemini, DeepSeek, Ollama)
            return Reply(status=404, body=b'{"error":{"message":"Not Found","type":"invalid_request_error"}}')
        content_type = payloads.SPEECH_CONTENT_TYPES[form]
        return Reply(events=payloads.speech_audio(self.name), headers={"content-type": content_type})

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        doc = json.loads(raw) if raw else None
        with self._lock:
            self.requests.append(Recorded(method, target, headers, doc))
        streamed = isinstance(doc, dict) and doc.get("stream") is True
        reply = self._next(target) or self._canned(target, streamed, doc)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.gate is not None:
            await asyncio.get_running_loop().run_in_executor(None, reply.gate.wait, 30)
        if reply.drop:
            writer.transport.abort()
            return False
        if reply.hang:
            if reply.keepalive is not None:  # DeepSeek holds a queued request open with blank lines
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
            await self._hold(reader, writer, reply)
            return False
        if reply.events is None and reply.body is None:
            reply.body = self._canned(target, streamed).body
        if reply.events is None and reply.chunked:
            body = reply.body or b""
            chunked = {"content-type": "application/json", "transfer-encoding": "chunked"}
            writer.write(self._status(reply.status, chunked))
            for start in range(0, len(body), 65536):
                piece = body[start : start + 65536]
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        if reply.events is None:
            body = reply.body or b""
            hdrs = {"content-type": "application/json", **reply.headers, "content-length": str(len(body))}
            if reply.split_body_s:
                half = len(body) // 2
                writer.write(self._status(reply.status, hdrs) + body[:half])
                await writer.drain()
                await asyncio.sleep(reply.split_body_s)
                body = body[half:]
            else:
                writer.write(self._status(reply.status, hdrs))
            writer.write(body)
            await writer.drain()
            return True
        hdrs = {"content-type": "text/event-stream", **reply.headers, "transfer-encoding": "chunked"}
        writer.write(self._status(reply.status, hdrs))
        for index, event in enumerate(reply.events):
            if reply.stop_after is not None and index == reply.stop_after:
                if reply.drop_mid_stream:
                    writer.transport.abort()
                    return False
                await self._hold(reader, writer, reply)
                return False
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply: Reply) -> None:
        """Hang until released, sending keep-alives if asked; note a client that leaves meanwhile."""
        assert self._release is not None
        release = asyncio.ensure_future(self._release.wait())
        eof = asyncio.ensure_future(reader.read())  # b"" when the client closes its side
        try:
            while True:
                every = reply.keepalive_every_s if reply.keepalive else None
                done, _ = await asyncio.wait({release, eof}, timeout=every, return_when=asyncio.FIRST_COMPLETED)
                if eof in done:
                    with self._lock:
                        self.client_disconnects += 1
                    self.disconnected.set()
                    return
                if release in done:
                    return
                assert reply.keepalive is not None
                writer.write(b"%x\r\n%s\r\n" % (len(reply.keepalive), reply.keepalive))
                await writer.drain()
        finally:
            release.cancel()
            eof.cancel()

    @staticmethod
    def _status(status: int, headers: dict[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
