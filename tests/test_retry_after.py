from __future__ import annotations

import email.utils
import time

import pytest

from gateway import retry_after


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("6m0s", 360),
        ("1s", 1),
        ("172.799999ms", 0.172799999),
        ("2m59.56s", 179.56),
        ("7.66s", 7.66),
        ("1h2m3s", 3723),
        ("0s", 0),
        ("12ms", 0.012),
        ("37s", 37),
        ("20.04466179s", 20.04466179),
    ],
)
def test_go_durations(text, seconds):
    assert retry_after.parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "5", "5x", "s", "1m 2s", "-1s"])
def test_garbled_durations_are_none(text):
    assert retry_after.parse_go_duration(text) is None


def test_header_precedence_and_forms():
    assert retry_after.from_headers({"retry-after-ms": "250", "retry-after": "9"}) == pytest.approx(0.25)
    assert retry_after.from_headers({"retry-after": "9"}) == 9
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    assert retry_after.from_headers({"retry-after": when}) == pytest.approx(120, abs=2)
    assert retry_after.from_headers({"retry-after": "soon"}) is None
    for garbage in ("nan", "inf", "-5"):
        assert retry_after.from_headers({"retry-after": garbage}) is None
        assert retry_after.from_headers({"retry-after-ms": garbage}) is None
    assert retry_after.from_headers({}) is None


def test_ratelimit_reset_prefers_the_spent_budget():
    headers = {
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-reset-tokens": "6m0s",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-remaining-tokens": "100",
    }
    assert retry_after.from_headers(headers) == 1
    del headers["x-ratelimit-remaining-requests"]
    assert retry_after.from_headers(headers) == 360


def test_message_hint():
    assert retry_after.from_message("Please try again in 20s. Visit ...") == 20
    assert retry_after.from_message("Please try again in 39m59.9s.") == pytest.approx(2399.9)
    assert retry_after.from_message("no hint here") is None
