"""The dashboard page in a real browser: Debian's chromium, driven by Playwright, against a gateway with
fake upstreams (and real Redis), requests sent with the openai SDK. Nothing is mocked; every wait is
Playwright's own (the page refreshes itself every 3 s, so 10 s covers a few refreshes)."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import ADMIN, MESSAGES, config_dict, served_by, wait_for
from tests.fakes import error

CHROMIUM = "/usr/bin/chromium"  # Debian's, as scripts/test installs it
WAIT_MS = 10_000
KEY = "sk-gw-dashboard-crm-0123456789"
OTHER = "sk-gw-dashboard-other-0123456789"
pytestmark = pytest.mark.timeout(120)  # a browser starts in about a second; a hang still ends


def digest(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


CLIENT_KEYS = [
    {
        "name": "crm-tool",
        "key": digest(KEY),
        "project": "crm",
        "budget": {"daily_usd": 1.0, "monthly_usd": 10.0},
        "rate_limits": {"requests_per_minute": 60},
    },
    {"name": "other-team", "key": digest(OTHER), "project": "other"},
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):  # never a downloaded browser: the system's, installed by scripts/test
        pytest.fail(f"{CHROMIUM} is not installed: run scripts/test, or apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@dataclass
class Dashboard:
    page: Page
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions

    def row(self, provider: str) -> Any:
        return self.page.locator(f'#providers tr[data-provider="{provider}"]')


def open_dashboard(browser: Browser, url: str, key: str) -> Dashboard:
    page = browser.new_context().new_page()
    board = Dashboard(page)
    page.on("request", lambda request: board.requests.append(request.url))
    page.on("console", lambda message: board.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda exc: board.errors.append(str(exc)))
    # "Un-bench openai now?": yes. "Bench groq for how many minutes?": 5.
    page.on("dialog", lambda dialog: dialog.accept("5") if dialog.type == "prompt" else dialog.accept())
    page.goto(f"{url}/dashboard")
    page.fill("#key", key)
    page.click("#sign-in button[type=submit]")
    return board


def client(url: str, key: str = "client-token") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def usage_total(url: str, start: int) -> tuple[int, float]:
    """Requests and priced cost in 30 days, by the usage API (chat, embeddings, speech) as the SDK reads it."""
    usage = openai.OpenAI(base_url=f"{url}/v1", admin_api_key=ADMIN, api_key="unused").admin.organization.usage
    requests, cost = 0, 0.0
    for read in (usage.completions, usage.embeddings, usage.audio_speeches):
        for bucket in read(start_time=start, bucket_width="1d", limit=30).data:
            for result in bucket.results:
                requests += result.num_model_requests
                cost += result.to_dict().get("cost_usd") or 0.0
    return requests, cost


def test_the_admin_sees_a_provider_benched_why_and_until_when_and_clears_it(
    fakes, start_gateway, redis_server, browser
):
    gateway = start_gateway(config_dict(fakes), redis_server.url, ADMIN)
    board = open_dashboard(browser, gateway.url, ADMIN)
    page = board.page
    expect(page.locator("#who")).to_have_text("Signed in with the admin key", timeout=WAIT_MS)
    health = gateway.health()["providers"]
    names = [p["name"] for p in health]
    assert names == ["openai", "groq", "gemini", "deepseek", "ollama"]
    expect(page.locator("#providers tbody tr td:nth-child(2)")).to_have_text(names, timeout=WAIT_MS)
    expect(page.locator("#providers .state-word")).to_have_text([p["state"] for p in health])

    # OpenAI's credits run out: the next request fails over, and the page shows it without a reload.
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    assert served_by(client(gateway.url)) == "groq"
    openai_row = board.row("openai")
    expect(openai_row.locator(".state-word")).to_have_text("cooldown", timeout=WAIT_MS)
    expect(openai_row.locator(".reason-words")).to_have_text("credits exhausted")
    countdown = openai_row.locator(".countdown")
    expect(countdown).to_have_text(re.compile(r"^59 min \d\d s$|^1 h 00 min$"))
    first = countdown.inner_text()
    page.wait_for_function(  # it counts down by itself, between refreshes too
        "first => document.querySelector('#providers tr[data-provider=openai] .countdown').textContent !== first",
        arg=first,
        timeout=WAIT_MS,
    )
    expect(page.locator("#traffic-summary")).to_contain_text("1 failover,", timeout=WAIT_MS)
    page.wait_for_function(
        """() => {
          const chart = charts['traffic-chart'];
          const failovers = chart.series.findIndex(s => s.label === 'failovers');
          return chart.data[failovers].reduce((a, b) => a + b, 0) === 1;
        }""",
        timeout=WAIT_MS,
    )
    expect(page.locator("#failovers tbody tr").first.locator(".served-by")).to_have_text("groq", timeout=WAIT_MS)
    expect(page.locator("#failovers tbody tr").first.locator(".skipped")).to_contain_text(
        "openai: credits exhausted (HTTP 429)"
    )

    # The billing is fixed: "Clear" (confirmed) un-benches it, for the gateway and on the page.
    openai_row.locator("button.clear").click()
    wait_for(lambda: gateway.provider("openai")["state"] == "available", what="openai available in /health")
    expect(openai_row.locator(".state-word")).to_have_text("available", timeout=WAIT_MS)
    expect(openai_row.locator("button.clear")).to_have_count(0)
    assert served_by(client(gateway.url)) == "openai"
    board.row("groq").locator("button.bench").click()  # for 5 minutes, by hand
    wait_for(lambda: gateway.provider("groq")["reason"] == "manual", what="groq benched by hand in /health")
    expect(board.row("groq").locator(".reason-words")).to_have_text("benched by an operator", timeout=WAIT_MS)
    expect(board.row("groq").locator(".countdown")).to_have_text(re.compile(r"^[45] min \d\d s$"))

    assert board.errors == []
    assert board.requests and all(url.startswith(f"{gateway.url}/") for url in board.requests), board.requests
    assert not any(ADMIN in url for url in board.requests)  # the key travels in a header only
    assert page.evaluate("sessionStorage.getItem('gateway-dashboard-key')") == ADMIN


def test_the_spend_chart_and_table_add_up_to_the_usage_api(fakes, start_gateway, browser):
    gateway = start_gateway(config_dict(fakes), admin_key=ADMIN)
    chat = client(gateway.url)
    for _ in range(3):  # gpt-4o-mini on openai: priced
        chat.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    chat.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # groq's llama: no price
    start = int(time.time()) // 86400 * 86400 - 29 * 86400
    wait_for(lambda: usage_total(gateway.url, start)[0] == 4, what="four requests in usage")
    requests, cost = usage_total(gateway.url, start)
    assert cost > 0

    page = open_dashboard(browser, gateway.url, ADMIN).page
    total = page.locator("#spend-models tfoot .cost")
    expect(page.locator("#spend-models tfoot .total-requests")).to_have_text(str(requests), timeout=WAIT_MS)
    assert float(total.get_attribute("data-usd")) == pytest.approx(cost)
    expect(total).to_contain_text("+ 1 unpriced")  # never $0 for what has no price
    groq = page.locator("#spend-models tbody tr", has_text="groq")
    expect(groq.locator(".cost")).to_have_text("unpriced (1 request)")
    legend = page.locator("#spend-chart .u-legend")
    expect(legend).to_contain_text("openai")
    expect(legend).to_contain_text("groq")
    drawn = """() => {
      const canvas = document.querySelector('#spend-chart canvas');
      const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      const blue = [0x25, 0x63, 0xeb];  // openai's bar colour: a bar, not only the axes and grid
      for (let i = 0; i < pixels.length; i += 4)
        if (pixels[i] === blue[0] && pixels[i + 1] === blue[1] && pixels[i + 2] === blue[2]) return true;
      return false;
    }"""
    page.wait_for_function(drawn, timeout=WAIT_MS)


def test_a_gateway_key_sees_only_its_own_and_a_wrong_key_sees_nothing(fakes, start_gateway, browser):
    gateway = start_gateway(config_dict(fakes, client_keys=CLIENT_KEYS), admin_key=ADMIN)
    for key, count in ((KEY, 1), (OTHER, 2)):
        for _ in range(count):
            client(gateway.url, key).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    start = int(time.time()) // 86400 * 86400 - 29 * 86400
    wait_for(lambda: usage_total(gateway.url, start)[0] == 3, what="three requests in usage")

    board = open_dashboard(browser, gateway.url, KEY)
    page = board.page
    expect(page.locator("#who")).to_have_text("Signed in as key crm-tool (project crm)", timeout=WAIT_MS)
    expect(page.locator("#providers tbody tr")).to_have_count(5, timeout=WAIT_MS)
    expect(page.locator("#keys tbody tr")).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator('#keys tr[data-key="crm-tool"]')).to_contain_text("of 60")  # its rate limit, in use
    expect(page.locator("#spend-models tfoot .total-requests")).to_have_text("1", timeout=WAIT_MS)
    expect(page.locator("#traffic-summary")).to_have_text(re.compile(r"^1 served,"), timeout=WAIT_MS)
    expect(page.locator("#providers button")).to_have_count(0)  # no admin buttons
    expect(page.locator("#providers th.admin-only")).to_be_hidden()
    assert not board.errors

    wrong = open_dashboard(browser, gateway.url, "sk-nobody").page
    expect(wrong.locator("#sign-in-error")).to_contain_text("That key was not accepted", timeout=WAIT_MS)
    expect(wrong.locator("#dashboard")).to_be_hidden()
    expect(wrong.locator("#providers tbody tr")).to_have_count(0)
    assert wrong.evaluate("sessionStorage.getItem('gateway-dashboard-key')") is None


def test_a_gateway_that_stops_answering_is_shown_so_and_the_page_recovers(fakes, spawn_gateway, browser):
    gateway = spawn_gateway(config_dict(fakes), admin_key=ADMIN)
    page = open_dashboard(browser, gateway.url, ADMIN).page
    expect(page.locator("#providers tbody tr")).to_have_count(5, timeout=WAIT_MS)
    expect(page.locator("#offline")).to_be_hidden()
    os.kill(gateway.proc.pid, signal.SIGSTOP)  # it hangs: the page's calls go unanswered until they time out
    try:
        # A refresh under way may wait out its own 5 s timeouts first: twice the usual deadline.
        expect(page.locator("#offline")).to_contain_text("The gateway is not answering", timeout=2 * WAIT_MS)
        expect(page.locator("#providers tbody tr")).to_have_count(5)  # what it said last stays on the page
    finally:
        os.kill(gateway.proc.pid, signal.SIGCONT)
    expect(page.locator("#offline")).to_be_hidden(timeout=2 * WAIT_MS)
