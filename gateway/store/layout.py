"""The Redis layout of the cooldown store: its keys and its Lua scripts (see store.cooldowns).

Every key is under the one hash tag of store.redis, so each script below, and the transaction that
clears a cooldown (value, index and counter together), touches keys of a single Cluster slot.
"""

from __future__ import annotations

from gateway.store.redis import key

# Extend-only write: a cooldown never replaces one already in Redis that benches until later
# (another replica's, or this one's from before a late answer), so concurrent failures cannot
# un-bench a provider. It compares `until`, as the local view does, not the TTL, which also holds
# the recovery window; a value without a readable `until` is judged by its TTL.
EXTEND = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, doc = pcall(cjson.decode, current)
  local bench_end = ok and type(doc) == 'table' and tonumber(doc['until'])
  if bench_end then
    if bench_end >= tonumber(ARGV[4]) then return 0 end
  elseif redis.call('PTTL', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('INCR', KEYS[3])
return 1
"""
# The probe lock: -1 when this caller won it, else how many ms the current holder keeps it. A lock
# that still holds this replica's last released token (ARGV[3]) is free: its release is on the way.
CLAIM = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[3] then return redis.call('PTTL', KEYS[1]) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return -1
"""
# Release only our own lock: a late release must not free a lock another replica took since.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Each running gateway checks in every few seconds, by Redis's clock (no skew between hosts), and
# check-ins older than a minute are dropped. How many checked in within ARGV[1] seconds:
CHECK_IN = """
local now = tonumber(redis.call('TIME')[1])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60)
return 1
"""
CHECKED_IN = """
return redis.call('ZCOUNT', KEYS[1], tonumber(redis.call('TIME')[1]) - tonumber(ARGV[1]), '+inf')
"""
CHECK_IN_S = 2.0
INDEX = key("cooldown-keys")
VERSION = key("cooldown-version")
GATEWAYS = key("gateways")


def cooldown_key(name: str) -> str:
    return key("cooldown", name)


def probe_key(name: str) -> str:
    return key("probe", name)
