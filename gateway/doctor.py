"""`gateway doctor`: can each configured provider serve right now? Found out without spending a token.

Per provider: the key (set, plausible, never printed), the connection and TLS, model access
(`GET /models`: the key is accepted and the mapped models are listed) and quota (DeepSeek's free
balance endpoint; for the others, the last cooldowns in the shared Redis store). Only GETs: nothing
here calls chat/completions or embeddings. The result is one table and an exit code: 0 when at
least one provider can serve, 1 when none can.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from gateway.classify import judge, parse_error
from gateway.errors import FailureClass, ProviderFailed
from gateway.providers import Provider, configure
from gateway.settings import Config, Timeouts
from gateway.status import ProviderStatus
from gateway.store import Cooldown
from gateway.transport import Transports

# Benches that mean "cannot serve until someone acts" (pay, fix the key); others pass by themselves.
_OUT_REASONS = (FailureClass.QUOTA.value, FailureClass.AUTH.value)
_HEADERS = ("PROVIDER", "KEY", "CONNECTION", "MODELS", "QUOTA", "VERDICT", "NOTES")


@dataclass
class Row:
    provider: str
    key: str = "-"
    connection: str = "-"
    models: str = "-"
    quota: str = "-"
    problems: list[str] = field(default_factory=list)  # each one alone means it cannot serve
    warnings: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "out" if self.problems else "warn" if self.warnings else "ok"

    def cells(self) -> tuple[str, ...]:
        notes = "; ".join(self.problems + self.warnings)
        return (self.provider, self.key, self.connection, self.models, self.quota, self.verdict, notes)


@dataclass
class Report:
    rows: list[Row]
    store: str  # the one line about the shared store

    def exit_code(self) -> int:
        return 0 if any(row.verdict != "out" for row in self.rows) else 1

    def render(self) -> str:
        table = [_HEADERS, *(row.cells() for row in self.rows)]
        widths = [max(len(line[i]) for line in table) for i in range(len(_HEADERS) - 1)]
        # NOTES, the only free-length column, goes last and unpadded.
        lines = ["  ".join([*map(str.ljust, line, widths), line[-1]]).rstrip() for line in table]
        serving = sum(row.verdict != "out" for row in self.rows)
        return "\n".join([*lines, self.store, f"{serving} of {len(self.rows)} providers can serve"])


async def run(config: Config, redis_url: str | None) -> Report:
    # A person is waiting: a provider that has not answered in 10 s is reported, not waited for.
    transports = Transports(Timeouts(connect_s=min(config.timeouts.connect_s, 5), total_s=10))
    providers = configure(config, transports)
    await transports.start()
    try:
        rows, (store_line, active) = await asyncio.gather(
            asyncio.gather(*(_probe(p) for p in providers)), _read_store(redis_url)
        )
    finally:
        await transports.close()
    if active is not None:
        now = time.time()
        for provider, row in zip(providers, rows, strict=True):
            _benches(row, ProviderStatus.of(provider, active, now))
    return Report(list(rows), store_line)


def _check_key(row: Row, provider: Provider) -> None:
    """Only the variable's name is ever shown, never the key or a piece of it."""
    env, key, flavor = provider.config.api_key_env, provider.key, provider.flavor
    if env is None:
        row.key = "not needed"
        return
    if key is None:
        row.key = "missing"
        row.problems.append(f"no API key: set {env}")
        return
    row.key = "ok"
    if os.environ.get(env, "") != key:  # the gateway strips it; other tools reading the variable may not
        row.key = "whitespace"
        row.warnings.append(f"{env} has whitespace or a newline around the key (a copy-paste slip?); ignored")
    if flavor.key_shape is not None and not flavor.key_shape.fullmatch(key):
        row.key = "odd shape" if row.key == "ok" else row.key
        row.warnings.append(f"{env} does not look like a {flavor.name} key ({flavor.key_hint}); checked anyway")


async def _probe(provider: Provider) -> Row:
    row = Row(provider.name)
    _check_key(row, provider)
    try:
        status, body = await provider.transport.get(provider, provider.config.base_url + "/models")
    except ProviderFailed as exc:  # DNS, refused, TLS, no answer: in the words a request would get
        row.connection = "failed"
        row.problems.append(exc.failure.detail)
    else:
        row.connection = "ok"
        if provider.key is not None:  # without one, a 401 is expected: only the connection was in question
            _check_models(row, provider, status, body)
            if status == 200:
                await _check_balance(row, provider)
    return row


def _listed(body: bytes) -> set[str] | None:
    """The model names in an OpenAI-shaped list, under every name a config may use for them."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        return None
    names: set[str] = set()
    for entry in data:
        ident = entry.get("id") if isinstance(entry, dict) else None
        if isinstance(ident, str):
            # Gemini lists `models/<name>`; Ollama lists `llama3.2:latest` for a mapped `llama3.2`.
            names |= {ident, ident.removeprefix("models/"), ident.removesuffix(":latest")}
    return names


def _check_models(row: Row, provider: Provider, status: int, body: bytes) -> None:
    mapped = list(dict.fromkeys(provider.config.models.values()))
    if status == 200:
        listed = _listed(body)
        if listed is None:
            row.models = "unreadable"
            row.warnings.append("the model list is not in OpenAI's shape; models not verified")
            return
        missing = [m for m in mapped if m not in listed]
        row.models = f"{len(mapped) - len(missing)}/{len(mapped)} listed"
        if len(missing) == len(mapped):
            row.problems.append(f"none of its models is listed: {', '.join(missing)}")
        elif missing:
            row.warnings.append(f"not listed: {', '.join(missing)}")
        return
    # The same reading of an error body as a failed request gets; the headers are not needed here.
    failure = judge(provider, parse_error(status, {}, body), body).failure  # our key scrubbed from its words
    match failure.kind:
        case FailureClass.AUTH:  # no provider text: DeepSeek's quotes the key's last characters
            row.models = "key rejected"
            row.problems.append(f"key rejected (HTTP {status}); check {provider.config.api_key_env}")
        case FailureClass.QUOTA:
            row.models, row.quota = "not verified", "exhausted"
            row.problems.append(f"quota exhausted: {failure.detail}")
        case FailureClass.MODEL_NOT_FOUND:
            row.models = "no list"
            row.problems.append(f"no model list at {provider.config.base_url} ({failure.detail}); check base_url")
        case FailureClass.TRANSIENT:
            row.models = "not verified"
            row.problems.append(f"failing now: {failure.detail}")
        case _:  # rate limited, or an answer we cannot place: it may still serve
            row.models = "not verified"
            row.warnings.append(f"models not verified: {failure.detail}")


async def _check_balance(row: Row, provider: Provider) -> None:
    """The flavor's free balance read, where it has one."""
    balance = await provider.flavor.balance(provider, provider.transport)
    if balance is None:
        return
    if balance.available is None:
        row.quota = "unknown"
        row.warnings.append(f"balance unreadable{balance.why}")
        return
    row.quota = balance.summary
    if not balance.available:
        row.quota = f"empty ({row.quota})"
        row.problems.append(balance.problem)


async def _read_store(redis_url: str | None) -> tuple[str, dict[str, Cooldown] | None]:
    """The store line, and every active cooldown (None: not known here)."""
    if not redis_url:
        return (
            "redis: not configured (REDIS_URL unset); the last known cooldowns live only in a running gateway:"
            " see `gateway status`",
            None,
        )
    from gateway.store.cooldowns import RedisCooldowns
    from gateway.store.redis import safe_url

    store = RedisCooldowns(redis_url, timeout_s=2.0)  # a person can wait longer than a request
    logging.getLogger("gateway.store").setLevel(logging.ERROR)  # the store line says it, once
    try:
        where = safe_url(redis_url)  # never the password
        store.connect()  # no sync loop: the doctor only reads
        if not await store.load():
            return f"redis: unreachable ({where}: {store.status().get('last_error', 'no answer')})", None
        return f"redis: ok ({where})", store.active(time.time())
    except ValueError as exc:  # not a Redis URL at all
        return f"redis: unusable REDIS_URL ({exc})", None
    finally:
        await store.close()


def _benches(row: Row, status: ProviderStatus) -> None:
    """What the gateways last learned, from the shared store: a quota or key bench is a fact here too."""
    own = status.cooldown
    if own is None:
        row.quota = "not benched" if row.quota == "-" else row.quota
    elif status.recovering:
        row.quota = f"recovering ({own.reason})" if row.quota == "-" else row.quota
        row.warnings.append(f"its {own.reason} cooldown is over; the next request to reach it is the probe")
    else:
        row.quota = own.reason if row.quota == "-" else f"{row.quota}, {own.reason}"
        note = f"benched for {own.reason} until {_utc(own.until)}"
        (row.problems if own.reason in _OUT_REASONS else row.warnings).append(note)
    for model, cooldown in sorted(status.model_benches.items()):
        row.warnings.append(f"model {model} benched for {cooldown.reason} until {_utc(cooldown.until)}")


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
