"""Clients that hold on: slow heads, slow bodies, floods of connections, too many requests at once.

Each runs against `gateway serve` as users run it, on 127.0.0.1, bounded in count and time.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from tests.conftest import MESSAGES, config_dict, figure, served_by, wait_for
from tests.fakes import Reply

HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n"


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setblocking(False)
    return sock


def answered(sock: socket.socket) -> bytes | None:
    """What the server sent on this connection and whether it closed it: None while it still waits."""
    try:
        data = sock.recv(65536)
    except BlockingIOError:
        return None
    except ConnectionResetError:
        return b"(reset)"
    return data or b"(closed)"


def replies(socks: list[socket.socket], timeout: float, what: str) -> list[bytes]:
    """Wait until the server has answered (and or closed) every connection; what each got."""
    got: dict[int, bytes] = {}

    def all_answered() -> bool:
        for index, sock in enumerate(socks):
            if index not in got and (reply := answered(sock)) is not None:
                got[index] = reply
        return len(got) == len(socks)

    wait_for(all_answered, timeout=timeout, what=what)
    return [got[index] for index in range(len(socks))]


def timed_request(url: str) -> float:
    """Milliseconds for one chat request (the client made and connected first: its start-up is not ours)."""
    with httpx.Client(timeout=10) as client:
        client.get(f"{url}/health")  # the client's own start-up is not the gateway's time
        started = time.perf_counter()
        response = client.post(
            f"{url}/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": MESSAGES},
            headers={"connection": "close"},
        )
        elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.text
    return elapsed


def hold(port: int, count: int, first_bytes: bytes) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = connect(port)
        sock.sendall(first_bytes)
        socks.append(sock)
    return socks


@pytest.mark.parametrize(
    ("what", "first_bytes", "limit"),
    [
        ("slowloris (an unfinished head)", HEAD, "head_timeout_s"),
        ("slow body (a head, then 1 byte of 1000)", HEAD + b"content-length: 1000\r\n\r\n{", "body_timeout_s"),
    ],
    ids=["slow-head", "slow-body"],
)
def test_slow_clients_are_cut_off_and_never_crowd_out_a_normal_request(fakes, spawn_gateway, what, first_bytes, limit):
    gateway = spawn_gateway(config_dict(fakes, limits={limit: 2}))
    count = 300
    socks = hold(gateway.port, count, first_bytes)
    try:
        served_in = timed_request(gateway.url)  # while they all hold on
        started = time.perf_counter()
        got = replies(socks, timeout=20, what="every slow connection to be closed")
        closed_after = time.perf_counter() - started
    finally:
        for sock in socks:
            sock.close()
    timeouts = sum(reply.startswith(b"HTTP/1.1 408") for reply in got)
    assert timeouts == count  # each was told why, with a 408, then closed
    figure(
        f"{what}: {count} slow connections; a normal request served in {served_in:.0f} ms meanwhile; "
        f"all {count} closed with a 408 within {closed_after:.1f} s of it ({limit} 2)"
    )


def test_a_flood_of_connections_past_the_cap_is_refused_at_once(fakes, spawn_gateway):
    cap, flood = 100, 150
    gateway = spawn_gateway(config_dict(fakes, limits={"max_connections": cap, "head_timeout_s": 30}))
    served_in = timed_request(gateway.url)
    idle = hold(gateway.port, cap, b"")  # connected, saying nothing: they hold every place (accepted in order)
    try:
        extra = hold(gateway.port, flood - cap, b"")
        started = time.perf_counter()
        refused = replies(extra, timeout=10, what="every connection past the cap to be refused")
        refused_in = (time.perf_counter() - started) * 1000
        assert all(r.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in r for r in refused)
        for sock in extra:
            sock.close()
    finally:
        for sock in idle:
            sock.close()
    again_in = wait_for(lambda: timed_request(gateway.url), what="a request once the flood is gone")
    figure(
        f"connection flood: {flood} connections against limits.max_connections {cap}: the {len(refused)} past it "
        f"refused with a 503 + Retry-After within {refused_in:.0f} ms; a request served in {served_in:.0f} ms "
        f"before, and in {again_in:.0f} ms once they left"
    )


def test_requests_past_the_in_flight_cap_are_shed_not_queued(fakes, spawn_gateway):
    gateway = spawn_gateway(config_dict(fakes, limits={"max_in_flight": 3}))
    gate = threading.Event()
    fakes["openai"].script(*[Reply(gate=gate) for _ in range(3)])
    held = [threading.Thread(target=lambda: served_by(gateway.client())) for _ in range(3)]
    for thread in held:
        thread.start()
    try:
        wait_for(lambda: fakes["openai"].calls() == 3, what="three requests in flight")
        with httpx.Client(timeout=10) as client:
            client.get(f"{gateway.url}/health")
            started = time.perf_counter()
            shed = client.post(
                f"{gateway.url}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES}
            )
            shed_in = (time.perf_counter() - started) * 1000
        assert shed.status_code == 503
        assert (shed.headers["retry-after"], shed.headers["x-should-retry"]) == ("1", "true")
        assert shed.json()["error"]["code"] == "overloaded"
        assert httpx.get(f"{gateway.url}/health").status_code == 200  # health is never shed
    finally:
        gate.set()
        for thread in held:
            thread.join(10)
    assert served_by(gateway.client()) == "openai"
    figure(
        f"in-flight cap: the 4th request past limits.max_in_flight 3 shed with a 503 in {shed_in:.0f} ms, not queued"
    )


@pytest.mark.parametrize(
    ("head", "code"),
    [
        (b"x-big: " + b"a" * 100_000 + b"\r\n", "request_head_too_large"),
        (b"".join(b"x-h%d: 1\r\n" % i for i in range(150)), "too_many_headers"),
    ],
    ids=["100-kB-header", "150-headers"],
)
def test_an_oversized_head_is_a_431(fakes, spawn_gateway, head, code):
    gateway = spawn_gateway(config_dict(fakes))
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=5)
    with sock:
        sock.sendall(HEAD + head + b"\r\n")
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 431") and code.encode() in reply
    assert fakes["openai"].calls() == 0
    figure(f"oversized head ({code}): a 431 before anything reads it; no provider reached")
