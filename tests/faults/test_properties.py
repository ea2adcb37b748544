"""Properties, over inputs no one would write by hand: the SSE relay and the classifier."""

from __future__ import annotations

import asyncio
import itertools
import time

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.classify import classify, parse_error
from gateway.errors import AttemptFailed, FailureClass
from gateway.providers import FLAVORS, Provider
from gateway.settings import ProviderConfig
from gateway.transport import sse
from tests.conftest import figure

KEY = "sk-property-test-key"
PROVIDER = Provider(
    ProviderConfig(name="p", flavor="openai", base_url="http://127.0.0.1:9/v1", api_key_env="K", models={"m": "m"}),
    FLAVORS["openai"],
    KEY,
    None,  # type: ignore[arg-type]  # no transport: these tests feed the relay its bytes themselves
)
RUNS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reader(pieces: list[bytes]):
    remaining = list(pieces)

    async def read() -> bytes:
        return remaining.pop(0) if remaining else b""

    return read


async def relay(pieces: list[bytes]) -> bytes:
    """Everything the relay sends a client for an upstream that sends these pieces."""
    read = reader(pieces)
    first, rest = await sse.first_event(PROVIDER, read, {})
    stream = sse.SseStream(PROVIDER, read, {}, lambda: None, first, rest, lambda doc: doc.get("usage"), 30.0)
    return first + b"".join([block async for block in stream.events()])


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


def from_first_data_event(upstream: bytes) -> bytes:
    """What a client gets: the blocks before the first one with a data line (keep-alives) are not sent."""
    start = 0
    while b"data:" not in upstream[start : upstream.index(b"\n\n", start) + 2]:
        start = upstream.index(b"\n\n", start) + 2
    return upstream[start:]


texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
chunk = st.builds(
    lambda text, extra: b"data: " + orjson.dumps({"choices": [{"delta": {"content": text}}], **extra}) + b"\n\n",
    texts,
    st.fixed_dictionaries({}, optional={"error": st.none(), "x_groq": st.one_of(st.text(max_size=5), st.none())}),
)
framing = st.sampled_from([b"", b": keep-alive\n\n", b"\n", b"id: 7\n", b"retry: 100\n"])


@RUNS
@given(
    events=st.lists(st.tuples(framing, chunk), min_size=1, max_size=12),
    cuts=st.lists(st.integers(min_value=0), max_size=30),
)
def split_property(events, cuts):
    upstream = b"".join(prefix + event for prefix, event in events) + b"data: [DONE]\n\n"
    assert asyncio.run(relay(split(upstream, cuts))) == from_first_data_event(upstream)


def test_any_split_of_a_valid_stream_is_relayed_as_it_came():
    started = time.perf_counter()
    split_property()
    elapsed = time.perf_counter() - started
    figure(
        f"SSE relay: {RUNS.max_examples} valid streams cut at random points, relayed byte for byte ({elapsed:.1f} s)"
    )


garbage = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [
            b"data: [DONE]\n\n",
            b'data: {"error": {"message": "boom ' + KEY.encode() + b'", "code": 503}}\n\n',
            b"event: error\ndata: upstream fell over " + KEY.encode() + b"\n\n",
            b'data: {"error": null, "choices": []}\n\n',
            b"data: {not json\n\n",
            b"data: \n\n",
            b'data: {"usage":{},"x_groq":3}\n\n',  # compact, as providers send: the usage path reads it
            b"\r\n\r\n",
        ]
    ),
)


@RUNS
@given(
    pieces=st.lists(st.one_of(chunk, garbage), min_size=1, max_size=15),
    cuts=st.lists(st.integers(min_value=0), max_size=20),
)
def garbage_property(pieces, cuts):
    upstream = b"".join(pieces)
    try:
        relayed = asyncio.run(relay(split(upstream, cuts) if upstream else [b""]))
    except AttemptFailed as exc:  # the edge turns this into an error answer, or after commit our error event
        assert KEY not in exc.failure.detail
        return
    assert relayed.endswith(b"data: [DONE]\n\n")  # a clean end only when the upstream said so


def test_any_upstream_bytes_end_in_done_or_a_failure_never_anything_else():
    started = time.perf_counter()
    garbage_property()
    elapsed = time.perf_counter() - started
    cases = RUNS.max_examples
    figure(f"SSE relay: {cases} streams of odd bytes end in [DONE] or a failure, nothing else ({elapsed:.1f} s)")


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(orjson.dumps),
    json_values.map(lambda doc: orjson.dumps({"error": doc})),
    json_values.map(lambda doc: orjson.dumps([{"error": doc}])),
)
hint_headers = st.dictionaries(
    st.sampled_from(["retry-after", "retry-after-ms", "x-ratelimit-reset-requests", "x-ratelimit-remaining-requests"]),
    st.text(max_size=12),
    max_size=3,
)


@RUNS
@given(status=st.integers(min_value=100, max_value=599), body=bodies, hints=hint_headers)
def classifier_property(status, body, hints):
    for flavor in FLAVORS.values():
        failure = classify(flavor, parse_error(status, hints, body))
        assert isinstance(failure.kind, FailureClass)
        assert failure.retry_after_s is None or failure.retry_after_s >= 0


def test_any_answer_classifies_to_exactly_one_class_without_raising():
    started = time.perf_counter()
    classifier_property()
    elapsed = time.perf_counter() - started
    figure(f"classifier: {RUNS.max_examples} answers of any status, body and hints, one class each ({elapsed:.1f} s)")
