"""`REDIS_URL` read once, for every part that connects (the gateway, the doctor, the CLIs).

The URL alone picks the topology, and each is served by redis-py's own client (store.redis.client):

- `redis://[[user]:password@]host[:port][/db]`, `rediss://…` (TLS), `unix://…`: one server, as
  redis-py's `from_url` reads it;
- `redis+sentinel://[[user]:password@]host1:26379,host2:26379,…/<service_name>[/db]`: the primary
  that these sentinels name for `service_name`, asked again after every lost connection. The password
  is the data nodes' (the sentinels are asked without one, as redis-py does by default);
- `redis+cluster://[[user]:password@]host1:7000,host2:7001,…`: a Redis Cluster, found from any of
  these nodes (db 0 only: a cluster has no other).

No redis import here: this only reads text (and `safe_url` never fails, it only hides).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

FORMS = (
    "redis://[[user]:password@]host[:port][/db] (rediss:// for TLS), "
    "redis+sentinel://[:password@]host1:26379,host2:26379,host3:26379/<service_name>[/db], "
    "or redis+cluster://[:password@]host1:7000,host2:7001[,...]"
)
PLAIN = ("redis", "rediss", "unix")
DEFAULT_PORTS = {"redis+sentinel": 26379, "redis+cluster": 6379}


@dataclass(frozen=True, slots=True)
class Target:
    kind: str  # "plain", "sentinel" or "cluster"
    url: str
    nodes: tuple[tuple[str, int], ...] = ()  # the sentinels, or the cluster's startup nodes
    username: str | None = None
    password: str | None = None
    service: str = ""  # Sentinel's name for the primary
    db: int = 0


def safe_url(url: str) -> str:
    """The URL without its password (nor any query), for logs, health and the doctor. Never raises:
    everything before the last `@` goes, so even a password with an unescaped `/` or `#` is hidden."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "<not a URL>"
    rest = rest.rpartition("@")[2]
    return f"{scheme}://{rest.split('?', 1)[0].split('#', 1)[0]}"


def parse(url: str) -> Target:
    """What REDIS_URL names; ValueError, naming the forms expected, when it names nothing usable."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if sep and scheme in PLAIN:
        return Target("plain", url)
    if not sep or scheme not in DEFAULT_PORTS:
        raise ValueError(f"REDIS_URL {safe_url(url)!r} is not one of: {FORMS}")
    kind = scheme.removeprefix("redis+")
    if "?" in rest or "#" in rest:
        raise ValueError(f"REDIS_URL ({safe_url(url)}): {scheme}:// takes no query or fragment; expected {FORMS}")
    userinfo, _, location = rest.rpartition("@")
    hosts, _, path = location.partition("/")
    username, password = _credentials(userinfo)
    nodes = tuple(_node(entry, DEFAULT_PORTS[scheme], url) for entry in hosts.split(","))
    parts = [unquote(p) for p in path.split("/")] if path else []
    if kind == "cluster":
        if parts not in ([], [""], ["0"]):
            raise ValueError(f"REDIS_URL ({safe_url(url)}): a cluster has only db 0, so no path; expected {FORMS}")
        return Target("cluster", url, nodes, username, password)
    if not parts or not parts[0] or len(parts) > 2:
        raise ValueError(f"REDIS_URL ({safe_url(url)}): name the service after the sentinels; expected {FORMS}")
    db = parts[1] if len(parts) == 2 else "0"
    if not db.isdigit():
        raise ValueError(f"REDIS_URL ({safe_url(url)}): db must be a number, not {db!r}; expected {FORMS}")
    return Target("sentinel", url, nodes, username, password, parts[0], int(db))


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    if not userinfo:
        return None, None
    user, _, password = userinfo.partition(":")  # as redis-py's from_url reads them
    return unquote(user) or None, unquote(password) or None


def _node(entry: str, default_port: int, url: str) -> tuple[str, int]:
    """`host`, `host:port` or `[v6 address]:port`."""
    if entry.startswith("["):
        host, _, after = entry[1:].partition("]")
        port = after.removeprefix(":")
    else:
        host, _, port = entry.partition(":")
    if not host or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise ValueError(f"REDIS_URL ({safe_url(url)}): {entry!r} is not host:port; expected {FORMS}")
    return host, int(port) if port else default_port
