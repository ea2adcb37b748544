"""A fast mock upstream for streamed answers: `"model": "sse-N"` gets N content chunks, then [DONE];
`"cut-N"` gets N chunks, then the connection is dropped; `"toolarge"` gets OpenAI's 429 "Request too
large" (one request over the per-minute budget: it fails over and benches nothing), for the soak.

Plain asyncio (uvloop when present) over HTTP/1.1 keep-alive with chunked encoding, one write per
SSE event, so that a proxy in front of it sees chunks arrive separately as from a real provider.
A request without `"stream": true` gets the canned ~700-byte chat.completion.

    python bench/mock_sse.py PORT
"""

from __future__ import annotations

import asyncio
import json
import sys

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench0000000000000000000000000",
        "object": "chat.completion",
        "created": 1766470234,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello! How can I help you today? This answer comes from the benchmark's mock "
                    "upstream, padded "
                    "so that the whole body is about as long as a short real completion.",
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 13,
            "completion_tokens": 9,
            "total_tokens": 22,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_0000000000",
    },
    separators=(",", ":"),
).encode()

_CHUNK = (
    b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1766470234,'
    b'"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0000000000","choices":[{"index":0,'
    b'"delta":{"content":"token "},"logprobs":null,"finish_reason":null}]}\n\n'
)
_FINISH = (
    b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1766470234,'
    b'"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
)


_TOO_LARGE = json.dumps(
    {
        "error": {
            "message": "Request too large for gpt-4o-mini on tokens per min (TPM): Limit 200000, Requested 250000.",
            "type": "tokens",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
).encode()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = json.loads(await reader.readexactly(length)) if length else {}
            if body.get("model") == "toolarge":
                writer.write(
                    b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                    % (len(_TOO_LARGE), _TOO_LARGE)
                )
                continue
            if not body.get("stream"):
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                    % (len(COMPLETION), COMPLETION)
                )
                continue
            count = int(str(body.get("model", "sse-10")).rpartition("-")[2] or 10)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            for _ in range(count):
                writer.write(_chunk(_CHUNK))
                await writer.drain()
            if str(body.get("model", "")).startswith("cut-"):
                writer.transport.abort()
                return
            writer.write(_chunk(_FINISH) + _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(int(sys.argv[1])))
