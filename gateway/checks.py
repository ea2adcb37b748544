"""The free checks of one provider: can it serve right now? Found out without spending a token.

Per provider: the key (set, plausible, never printed), the connection and TLS, model access
(`GET /models`: the key is accepted and the mapped models are listed) and quota (the flavor's free
balance read, where it has one). Only GETs: nothing here calls chat/completions or embeddings.

`gateway doctor` prints them as a table; a running gateway runs them at start and after a reload
and feeds what is certain into routing (`Row.finding`): a provider that cannot be reached at all,
or whose key is rejected, is known before the first user request pays for it. A slow or failing
model list proves nothing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from gateway.classify import judge, parse_error
from gateway.errors import Failure, FailureClass, ProviderFailed
from gateway.providers import Provider, configure
from gateway.settings import Config, Timeouts
from gateway.transport import Transports

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
    finding: Failure | None = None  # what routing should know: unreachable, or the key rejected
    reachable: bool = False  # it answered over HTTP at all
    key_accepted: bool = False  # its model list answered 200 to its key

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


Found = Callable[[Provider, Row], None]


async def check_all(
    config: Config, names: set[str] | None = None, attempts: int = 1, found: Found | None = None
) -> list[tuple[Provider, Row]]:
    """The checks of the configured providers (or of those `names`), at once, each bounded: a person (or
    a starting gateway) is waiting, so a provider that has not answered in 10 s is reported, not waited
    for. `found` hears of each provider as soon as its own checks are done."""
    transports = Transports(Timeouts(connect_s=min(config.timeouts.connect_s, 5), total_s=10))
    providers = [p for p in configure(config, transports) if names is None or p.name in names]

    async def one(provider: Provider) -> tuple[Provider, Row]:
        row = await check(provider, attempts)
        if found is not None:
            found(provider, row)
        return provider, row

    await transports.start()
    try:
        return list(await asyncio.gather(*(one(p) for p in providers)))
    finally:
        await transports.close()


def _check_key(row: Row, provider: Provider) -> None:
    """Only the variable's name is ever shown, never the key or a piece of it."""
    env, key, flavor = provider.config.api_key_env, provider.key, provider.flavor
    if env is None:
        row.key = "not needed"
        return
    if provider.key_problem is not None:
        row.key = "unusable"
        row.problems.append(provider.key_problem)
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


async def check(provider: Provider, attempts: int = 1) -> Row:
    """One provider's checks. `attempts`: how many connections must fail, 0.5 s apart, before it is
    called unreachable (a gateway asks as many as open its breaker: one refused connect at boot may
    be a blip)."""
    row = Row(provider.name)
    _check_key(row, provider)
    for attempt in range(attempts):
        try:
            # Through the flavor: litellm's providers are read through litellm (Anthropic's GET /v1/models
            # takes its own headers and path), and one that lists nothing for free is not checked at all.
            listed = await provider.flavor.list_models(provider, provider.transport)
        except ProviderFailed as exc:  # DNS, refused, TLS, no answer: in the words a request would get
            failure = exc.failure
            if failure.kind is FailureClass.UNREACHABLE and attempt + 1 < attempts:
                await asyncio.sleep(0.5)  # in the background: nobody waits on it
                continue
            row.connection = "redirects" if failure.kind is FailureClass.REDIRECTED else "failed"
            row.problems.append(failure.detail)
            if failure.kind in (FailureClass.UNREACHABLE, FailureClass.REDIRECTED):  # certain: tell routing
                row.finding = failure
            return row
        break
    if listed is None:
        row.connection = row.models = "not checked"
        row.warnings.append("no free model list: connection and model access not checked (no tokens spent)")
        return row
    status, body = listed
    row.connection, row.reachable = "ok", True
    if provider.key is not None:  # without one, a 401 is expected: only the connection was in question
        _check_models(row, provider, status, body)
        if status == 200:
            row.key_accepted = True
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
    err = parse_error(status, {}, body)
    failure = judge(provider, err, body).failure  # our key scrubbed from its words
    match failure.kind:
        case FailureClass.AUTH if provider.flavor.is_missing_permission(err):
            # A key may lack only the permission to list models (OpenAI's restricted keys) and still serve.
            row.models = "not verified"
            env = provider.config.api_key_env
            row.warnings.append(f"the key may not list models (HTTP {status}); if requests fail too, check {env}")
        case FailureClass.AUTH:  # no provider text: DeepSeek's quotes the key's last characters
            row.finding = failure
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
