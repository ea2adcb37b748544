"""REDIS_URL's forms (gateway/store/redis_url.py): what each names, what is refused with the forms
named, and that no form's password ever shows. No server needed: clients connect lazily."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from gateway.store.redis import RedisLink, client, close_client
from gateway.store.redis_url import FORMS, Target, parse, safe_url
from tests.test_doctor import run_cli

SECRET = "pa:ss/w@rd#1"
ESCAPED = "pa%3Ass%2Fw%40rd%231"


def test_each_form_names_its_topology():
    assert parse("redis://:x@h:6380/2") == Target("plain", "redis://:x@h:6380/2")
    assert parse("rediss://h").kind == "plain" and parse("unix:///run/redis.sock").kind == "plain"
    sentinel = parse(f"redis+sentinel://:{ESCAPED}@a:26379,b,[::1]:26380/mymaster/3")
    assert sentinel.kind == "sentinel" and sentinel.service == "mymaster" and sentinel.db == 3
    assert sentinel.nodes == (("a", 26379), ("b", 26379), ("::1", 26380))
    assert (sentinel.username, sentinel.password) == (None, SECRET)
    assert parse("redis+sentinel://a:1/svc").db == 0
    cluster = parse("redis+cluster://ops:pw@h1:7000,h2:7001")
    assert cluster.kind == "cluster" and cluster.nodes == (("h1", 7000), ("h2", 7001))
    assert (cluster.username, cluster.password) == ("ops", "pw")
    assert parse("redis+cluster://h1,h2/").nodes == (("h1", 6379), ("h2", 6379))


@pytest.mark.parametrize(
    "url",
    [
        "http://h:6379",
        "localhost:6379",
        "redis+sentinel://a:26379,b:26379",  # no service
        "redis+sentinel://a:26379/svc/zero",
        "redis+sentinel://a:26379/svc/0/extra",
        "redis+sentinel://a:nope/svc",
        "redis+cluster://h1:7000/1",  # a cluster has db 0 only
        "redis+cluster://h1:7000,,h2:7001",
        "redis+cluster://h1:70000",
        "redis+cluster://h1:7000?ssl=true",
    ],
)
def test_a_bad_url_names_the_forms_and_hides_the_password(url):
    with pytest.raises(ValueError) as refused:
        parse(url.replace("://", f"://:{ESCAPED}@", 1) if "://" in url else url)
    assert FORMS in str(refused.value)
    assert SECRET not in str(refused.value) and ESCAPED not in str(refused.value)
    with pytest.raises(ValueError):
        RedisLink(url)  # at once, not at the first call


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{ESCAPED}@h:6379/0",
        f"redis://user:{SECRET}@h:6379/0",  # unescaped: / # @ in it
        f"redis+sentinel://:{ESCAPED}@a:26379,b:26379/svc/1",
        f"redis+sentinel://:{SECRET}@a:26379,b:26379/svc",
        f"redis+cluster://:{ESCAPED}@h1:7000,h2:7001",
        f"redis+cluster://:{SECRET}@h1:7000,h2:7001",
        f"redis://h:6379/0?password={ESCAPED}",
    ],
)
def test_safe_url_never_shows_a_password(url):
    shown = safe_url(url)
    for piece in ("pa", "ss", "rd", "w@", ESCAPED):
        assert piece not in shown.split("://", 1)[1], shown
    assert shown.startswith(url.split("://")[0] + "://")


def test_the_client_is_redis_pys_own_for_each_form():
    async def main() -> None:
        plain = client("redis://127.0.0.1:1/0", 0.05)
        sentinel = client(f"redis+sentinel://:{ESCAPED}@127.0.0.1:1,127.0.0.1:2/svc/2", 0.05)
        cluster = client("redis+cluster://127.0.0.1:1,127.0.0.1:2", 0.05)
        assert isinstance(plain, Redis) and isinstance(sentinel, Redis) and isinstance(cluster, RedisCluster)
        pool = sentinel.connection_pool
        assert pool.service_name == "svc" and pool.connection_kwargs["db"] == 2
        assert pool.connection_kwargs["password"] == SECRET
        assert [s.connection_pool.connection_kwargs.get("password") for s in pool.sentinel_manager.sentinels] == [
            None,
            None,
        ]  # the password is the data nodes'
        # No client-side retries: the link's backoff is the retry.
        assert plain.get_retry().get_retries() == sentinel.get_retry().get_retries() == 0
        assert cluster.retry.get_retries() == 0
        for each in (plain, sentinel, cluster):
            await close_client(each)

    asyncio.run(main())


def test_the_clis_refuse_a_bad_url_with_the_forms(tmp_path):
    env = {"REDIS_URL": "redis+cluster://h1:7000/5", "PATH": "/usr/bin:/bin"}
    cooldown = run_cli(["cooldown", "clear", "openai"], env)
    assert cooldown.returncode == 2 and "redis+sentinel://" in cooldown.stderr, cooldown.stderr
    usage = run_cli(["usage", "--url", ""], env)
    assert usage.returncode == 2 and "a cluster has only db 0" in usage.stderr, usage.stderr
    config = tmp_path / "providers.yaml"
    config.write_text(
        "providers:\n  - {name: ollama, flavor: ollama, base_url: 'http://127.0.0.1:9/v1', models: {m: m}}\n"
    )
    bad = {**env, "REDIS_URL": f"redis+sentinel://:{ESCAPED}@a:26379"}  # no service named: refused at start
    serve = run_cli(["serve", "--config", str(config), "--port", "9"], bad)
    assert serve.returncode == 2 and "Traceback" not in serve.stderr and FORMS in serve.stderr, serve.stderr
    assert ESCAPED not in serve.stderr and SECRET not in serve.stderr


def test_the_doctor_reports_a_bad_url_on_its_redis_line():
    from gateway.doctor import _read_store

    line, active = asyncio.run(_read_store(f"redis+sentinel://:{ESCAPED}@a:26379"))
    assert line.startswith("redis: unusable REDIS_URL (") and FORMS in line and active is None
    assert ESCAPED not in line and SECRET not in line
