"""litellm as a transport, for providers that do not speak OpenAI's wire format. The only module that calls litellm.

litellm is imported in the background, and only when a provider needs it (`litellm_loader`, the
only module that imports it).

Calls go through `acompletion` / `aembedding`, which translate to and from OpenAI's shapes, with
litellm's own retries off: the next provider is the retry. Its exceptions become ours in one place,
`_failure`, read not by their class (litellm folds a credit error, a 413 and a bad request into one
BadRequestError) but by the upstream's own status, headers and error body, which litellm carries on
the exception; the flavor's predicates then judge them like any provider's answer.
"""

from __future__ import annotations

import ast
import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from gateway.classify import judge, parse_error
from gateway.errors import CallerFault, ProviderFailed
from gateway.providers.base import Capability
from gateway.transport.base import Answer
from gateway.transport.litellm_loader import LOADER
from gateway.transport.sse import StallWatchdog  # the relay's own: a chunk stamps the time, one timer

if TYPE_CHECKING:
    from gateway.endpoints import Endpoint
    from gateway.providers import Provider
    from gateway.settings import Timeouts


def _module() -> Any:
    if LOADER.module is None:  # the router skips a provider until it loads: only a direct caller gets here
        raise ProviderFailed.transient(LOADER.error or "litellm is still loading")
    return LOADER.module


# -- litellm's exceptions, read as the upstream's answer ------------------------------------------------

_BYTES_REPR = re.compile(r"b(['\"])\{.*\}\1", re.S)


def _raw_body(text: str) -> bytes:
    """The upstream's error body inside litellm's message ("…Exception - {json}"; a b'…' repr for streams)."""
    if (found := _BYTES_REPR.search(text)) is not None:
        try:
            return ast.literal_eval(found.group(0))
        except (ValueError, SyntaxError):
            pass
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1].encode() if 0 <= start < end else b""


def _status(exc: BaseException) -> int | None:
    """The upstream's own status: litellm reports a 529 as 500 and a 413 as 400."""
    status = getattr(exc, "provider_status_code", None)
    if isinstance(status, int):
        return status
    # litellm raises its class while handling the provider's own error, which holds the real status.
    context = exc.__context__
    status = getattr(context, "status_code", None)
    if isinstance(status, int) and hasattr(context, "headers"):
        return status
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _headers(exc: BaseException) -> Mapping[str, str]:
    headers = getattr(exc, "litellm_response_headers", None) or getattr(exc.__context__, "headers", None)
    return headers if isinstance(headers, Mapping) else {}


def _unreachable(exc: BaseException) -> bool:
    """No connection at all (litellm reports a refused one as an InternalServerError)."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            break
        if isinstance(seen, ConnectionRefusedError) or type(seen).__name__ in ("ClientConnectorError", "ConnectError"):
            return True
        seen = seen.__cause__ or seen.__context__
    return "Cannot connect to host" in str(exc)


def _failure(provider: Provider, exc: BaseException) -> ProviderFailed | CallerFault:
    """The one mapping of litellm's exceptions to ours."""
    exc = getattr(exc, "original_exception", None) or exc  # a mid-stream error wraps the upstream's
    if _unreachable(exc):
        return ProviderFailed.unreachable("cannot connect (through litellm)")
    if LOADER.module is not None and isinstance(exc, LOADER.module.Timeout):
        return ProviderFailed.transient("no answer within litellm's timeout")
    status = _status(exc)
    if status is None:
        return ProviderFailed.transient(f"litellm failed: {type(exc).__name__}")
    text = str(getattr(exc, "message", None) or exc)
    body = _raw_body(text)
    err = parse_error(status, _headers(exc), body)
    if not body:  # litellm's own words (a mid-stream "Overloaded"), past its "litellm.XError: " prefix
        err.message = text.rpartition(" - ")[2] or text
    err.openai_shaped = False  # Anthropic's envelope: a relayed caller fault is rewrapped in OpenAI's
    return judge(provider, err, body)


# -- the transport --------------------------------------------------------------------------------------

_DONE = b"data: [DONE]\n\n"


def _call_args(provider: Provider, body: dict[str, Any]) -> dict[str, Any]:
    args = dict(body)
    # drop_params: an OpenAI parameter the provider lacks is dropped, as the OpenAI-speaking fallbacks ignore it.
    args.update(api_key=provider.key or None, num_retries=0, max_retries=0, drop_params=True)
    if base := provider.config.base_url:
        # litellm appends /v1/messages to an Anthropic base: one written with /v1, as OpenAI's are, would
        # be asked for /v1/v1/messages (a 404, read as a missing model). Its own model list strips it too.
        args["api_base"] = base.removesuffix("/v1") if body["model"].startswith("anthropic/") else base
    return args


def _answer_headers(result: Any) -> dict[str, str]:
    """The upstream's request id, where litellm kept it, for the log."""
    hidden = getattr(result, "_hidden_params", None) or {}
    extra = hidden.get("additional_headers") or {}
    request_id = extra.get("llm_provider-request-id") or extra.get("llm_provider-x-request-id")
    return {"x-request-id": request_id} if isinstance(request_id, str) else {}


class LitellmTransport:
    def __init__(self, timeouts: Timeouts) -> None:
        self.timeouts = timeouts
        self.max_response_bytes = 128 * 1024 * 1024  # Limits' default, until the gateway configures it

    async def start(self) -> None:
        """Nothing to open (litellm keeps its own clients); its import may begin now, if a provider wants it."""
        LOADER.transports_started()

    async def close(self) -> None:
        pass

    async def complete(self, provider: Provider, endpoint: Endpoint, body: dict[str, Any]) -> Answer:
        litellm = _module()
        call = litellm.aembedding if endpoint.capability is Capability.EMBEDDINGS else litellm.acompletion
        try:
            async with asyncio.timeout(self.timeouts.total_s):
                result = await call(**_call_args(provider, body))
        except TimeoutError as exc:
            raise ProviderFailed.transient(f"no answer within {self.timeouts.total_s:g} s") from exc
        except Exception as exc:
            raise _failure(provider, exc) from exc
        doc = result.model_dump(exclude_none=True)
        data = orjson.dumps(doc)
        if len(data) > self.max_response_bytes:
            raise ProviderFailed.transient(f"answer larger than {self.max_response_bytes} bytes")
        return Answer(data, _answer_headers(result), endpoint.usage(doc))

    async def stream(self, provider: Provider, endpoint: Endpoint, body: dict[str, Any]) -> LitellmStream:
        """A stream read up to its first chunk: the deadline covers it, and a failure before it fails over."""
        litellm = _module()
        upstream = None
        try:
            async with asyncio.timeout(self.timeouts.total_s):
                upstream = await litellm.acompletion(**_call_args(provider, body))
                first = await anext(upstream)
        except BaseException as exc:
            if upstream is not None:
                _close(upstream)
            if isinstance(exc, TimeoutError):
                raise ProviderFailed.transient(f"no first chunk within {self.timeouts.total_s:g} s") from exc
            if isinstance(exc, StopAsyncIteration):
                raise ProviderFailed.transient("stream ended before the first chunk") from exc
            if isinstance(exc, Exception):
                raise _failure(provider, exc) from exc
            raise
        return LitellmStream(provider, upstream, first, endpoint, self.timeouts.total_s)

    async def get(self, provider: Provider, url: str) -> tuple[int, bytes]:
        raise ProviderFailed.transient("the litellm transport reads nothing by URL")

    async def list_models(self, provider: Provider) -> tuple[int, bytes] | None:
        """The models the key may use, from the provider's own free list where litellm reads one
        (Anthropic's GET /v1/models); None where it does not. OpenAI-shaped, or an error status."""
        if provider.key is None:  # never a list read with litellm's fallback, the environment's own key
            return None
        if not await LOADER.loaded(self.timeouts.total_s):
            raise ProviderFailed.transient(LOADER.error or "litellm is still loading")
        from litellm.utils import ProviderConfigManager  # loaded by now: no cost

        # litellm's provider of the first mapped model (`anthropic` of `anthropic/claude-…`) lists for all.
        prefix = next(iter(provider.config.models.values())).partition("/")[0]
        try:
            which = LOADER.module.LlmProviders(prefix)
            info = ProviderConfigManager.get_provider_model_info(model=None, provider=which)
        except ValueError:  # not a provider litellm knows by that name
            return None
        if info is None:
            return None
        try:
            async with asyncio.timeout(self.timeouts.total_s):
                names = await asyncio.to_thread(info.get_models, provider.key, provider.config.base_url)
        except TimeoutError as exc:
            raise ProviderFailed.transient(f"no model list within {self.timeouts.total_s:g} s") from exc
        except NotImplementedError:
            return None
        except Exception as exc:  # litellm says "… HTTP 401: invalid x-api-key", or could not connect
            if _unreachable(exc):
                raise ProviderFailed.unreachable("cannot connect (through litellm)") from exc
            found = re.search(r"HTTP (\d{3})(?:: (.*))?", str(exc))
            if found is None:
                raise ProviderFailed.transient(f"model list failed: {type(exc).__name__}") from exc
            error = {"error": {"message": found.group(2) or "", "type": None}}
            return int(found.group(1)), orjson.dumps(error)
        listed: set[str] = set()
        for name in names:
            # Anthropic lists dated ids (claude-haiku-4-5-20251001); configs use the aliases too.
            undated = re.sub(r"-\d{8}$", "", name)
            listed |= {name, undated, undated + "-latest"}
        return 200, orjson.dumps({"object": "list", "data": [{"id": name} for name in sorted(listed)]})


_closing: set[asyncio.Task[Any]] = set()


def _close(upstream: Any) -> None:
    """Close litellm's stream, and so its HTTP response: the provider stops generating and billing."""
    try:
        task = asyncio.get_running_loop().create_task(upstream.aclose())
    except RuntimeError:  # no loop (a stream dropped at exit): litellm's own finaliser closes it
        return
    _closing.add(task)
    task.add_done_callback(_closing.discard)


class LitellmStream:
    """A committed stream of litellm chunks, relayed as OpenAI's SSE events."""

    def __init__(self, provider: Provider, upstream: Any, first: Any, endpoint: Endpoint, total_s: float) -> None:
        self._provider = provider
        self._upstream = upstream
        self._usage_of = endpoint.usage
        self._total_s = total_s
        self._closed = False
        self.headers: Mapping[str, str] = _answer_headers(upstream)
        self.usage: dict[str, Any] | None = None
        self.strip_usage = False
        self.first = self._event(first)

    def _event(self, chunk: Any) -> bytes:
        """One chunk as an SSE event; b"" for a usage-only chunk the client did not ask for."""
        doc = chunk.model_dump(exclude_none=True)
        if (usage := self._usage_of(doc)) is not None:
            self.usage = usage
            if self.strip_usage and doc.get("choices") == []:
                return b""
        return b"data: " + orjson.dumps(doc) + b"\n\n"

    async def events(self) -> AsyncIterator[bytes]:
        """The rest, then `[DONE]`; ProviderFailed when litellm raises or no chunk comes for `total_s`."""
        # The watchdog outside the try: its stall, a ProviderFailed, is not litellm's exception to map.
        with StallWatchdog(asyncio.get_running_loop(), self._total_s) as watchdog:
            try:
                async for chunk in self._upstream:
                    watchdog.fed()
                    if event := self._event(chunk):
                        watchdog.pause()  # a slow client is not a stalled upstream
                        yield event
                        watchdog.resume()
                watchdog.pause()
                yield _DONE
            except Exception as exc:
                failed = _failure(self._provider, exc)
                # Too late to relay a status: whatever it was, it ends the stream as the provider's failure.
                raise (failed if isinstance(failed, ProviderFailed) else ProviderFailed(failed.failure)) from exc
            finally:
                self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _close(self._upstream)
