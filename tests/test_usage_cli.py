"""`gateway usage`: the table, its window, and both ways in (a gateway's usage API, or the store)."""

from __future__ import annotations

import argparse
import asyncio
import time

import pytest

from gateway.usage_cli import add_usage_command, from_gateway, render, rows_of, window
from tests.usage_rows import DAY, EMBED, HOUR, NOW, T0, page, row


def test_the_table_adds_up_and_says_what_is_unpriced():
    rows = [
        row(T0, requests=2, input=1000, cached=200, output=300, cost_in=1_000_000, cost_out=2_000_000),
        row(T0 + DAY, provider="groq", model="llama-3.1-8b-instant", cost_in=0, cost_out=0, unpriced=1, estimated=1),
        row(T0 + DAY, key=None, cost_in=500_000, cost_out=0),
    ]
    table = render(rows, ["provider", "model"]).splitlines()
    assert table[0].split() == "PROVIDER MODEL REQUESTS INPUT CACHED OUTPUT COST_USD ESTIMATED".split()
    assert table[1].split() == "groq llama-3.1-8b-instant 1 100 0 10 unpriced 1".split()
    assert table[2].split() == "openai gpt-4o-mini 3 1,100 200 310 0.003500 0".split()
    assert table[3].startswith("---") and table[4].split() == "TOTAL 4 1,200 200 320 0.003500 +1 unpriced 1".split()
    assert "providers.yaml" in table[5] and "estimated" in table[6]
    by_day = [line.split()[:3] for line in render(rows, ["day", "key"]).splitlines()[1:4]]
    assert by_day == [["2025-11-29", "alice", "2"], ["2025-11-30", "-", "1"], ["2025-11-30", "alice", "1"]]
    assert render([], []).splitlines()[-1].split() == "TOTAL 0 0 0 0 0.000000 0".split()


def test_since_reads_whole_units():
    assert window("30m", NOW + 59) == ("1m", NOW - 30 * 60, NOW + 60)
    assert window("12h", NOW + 59) == ("1h", NOW - 12 * HOUR, NOW + 60)
    assert window("7d", NOW) == ("1d", T0 + 3 * DAY - 7 * DAY, NOW + 1)
    assert window("3000m", NOW)[:2] == ("1h", NOW - 50 * HOUR)  # the stores keep minutes for two days only
    assert window("200h", NOW)[:2] == ("1d", T0 + 3 * DAY - 9 * DAY)  # and hours for eight
    for bad in ("7", "0d", "1w", "-3h", "d"):
        with pytest.raises(ValueError):
            window(bad, NOW)


def test_the_api_pages_make_the_same_table_as_the_store():
    rows = [
        row(T0 + 60, requests=2, cost_in=7, cost_out=11, estimated=1),
        row(T0 + DAY, provider="groq", key="bob", user="u1", unpriced=1, cost_in=0, cost_out=0),
        row(T0 + DAY + HOUR, provider="groq", key="bob", cost_in=3, cost_out=0),
        row(T0 + DAY, endpoint=EMBED, model="text-embedding-3-small", output=0, cost_out=0),
    ]
    names = {"key": "api_key_id", "user": "user_id", "project": "project_id"}
    for by in (["provider", "model"], ["day", "key", "user"], ["project"], []):
        group_by = [names.get(name, name) for name in by if name != "day"]
        pages = [page(kind, rows, end_time=T0 + 2 * DAY, group_by=group_by) for kind in ("completions", "embeddings")]
        assert render([r for answer in pages for r in rows_of(answer)], by) == render(rows, by)


def usage_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="gateway")
    add_usage_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["usage", *argv])
    return args.run(args)


def test_usage_command_refuses_bad_arguments(capsys):
    assert usage_cli("--by", "provider,colour") == 2 and "colour" in capsys.readouterr().err
    assert usage_cli("--since", "1w") == 2 and "--since" in capsys.readouterr().err
    assert usage_cli("--url", "http://127.0.0.1:9", "--key", "") == 2 and "GATEWAY_ADMIN_KEY" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="cannot read"):
        from_gateway("http://127.0.0.1:9/v1", "k", ["provider"], "1d", T0, T0 + DAY)  # nothing listens on port 9


def test_usage_command_reads_the_sqlite_store(tmp_path, monkeypatch, capsys):
    from gateway.accounting.ledger import Batch
    from gateway.accounting.sqlite_store import SqliteUsageStore

    path, minute, batch = tmp_path / "usage.sqlite3", int(time.time()) // 60 - 1, Batch("test:1")
    for _, dims, counters in (row(0, key=None, requests=2), row(0, provider="groq", unpriced=1, cost_in=0, cost_out=0)):
        batch.usage[(minute, dims)] = counters

    async def write() -> bool:
        store = SqliteUsageStore(str(path), 400)
        await store.start()
        try:
            return await store.write(batch)
        finally:
            await store.close()

    assert asyncio.run(write())
    provider = "{name: local, flavor: ollama, base_url: 'http://127.0.0.1:9/v1', models: {gpt-4o-mini: gpt-4o-mini}}"
    config = tmp_path / "providers.yaml"
    config.write_text(f"providers: [{provider}]\nusage: {{path: '{path}'}}\n")
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert usage_cli("--since", "1h", "--by", "provider,key", "--config", str(config), "--url", "") == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"from sqlite {path}" in lines[0]
    assert lines[2].split() == "groq alice 1 100 0 10 unpriced 0".split()
    assert lines[3].split() == "openai - 2 100 0 10 0.000021 0".split()


def test_a_missing_usage_file_is_said_not_read_as_nothing_spent(tmp_path, monkeypatch, capsys):
    provider = "{name: local, flavor: ollama, base_url: 'http://127.0.0.1:9/v1', models: {gpt-4o-mini: gpt-4o-mini}}"
    config = tmp_path / "providers.yaml"
    config.write_text(f"providers: [{provider}]\nusage: {{path: '{tmp_path / 'nowhere.sqlite3'}'}}\n")
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert usage_cli("--config", str(config), "--url", "") == 1
    assert "no usage file at" in capsys.readouterr().err
    assert not (tmp_path / "nowhere.sqlite3").exists()  # and none was made


def test_a_user_name_cannot_drive_the_terminal():
    table = render([row(T0, user="\x1b[2J\x1b[31mred")], ["user"])
    assert "\x1b" not in table and "?[2J?[31mred" in table
