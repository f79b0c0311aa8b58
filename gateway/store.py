"""Redis: where every worker process and machine meets for the gateway's shared, fast-changing state.

- the published tenant policy (kill switch, limits, allow-list), so a change reaches every worker at once;
- usage counters per calendar day and month (in the tenant's time zone) and per minute (rate limits);
- open reservations (worst case of an in-flight call) with an expiry, swept when their owner died;
- circuit-breaker state per catalogue model, shared by all workers.

Each check-and-reserve is one Lua script, which Redis runs atomically: no two reservations can both see
the same remaining budget. All of a tenant's keys share one hash tag ({ns:schema}), so a tenant's script
touches one cluster slot. The database stays the source of truth: counters missing from Redis (first
call of a period, or a flushed Redis) are rebuilt from the tenant's model-call records.
"""

import functools
from typing import Any, cast

import redis
from django.conf import settings
from django.db import connection

_RELEASE_FUNCTION = """
local function incr_if_exists(key, delta)
  if key ~= '' and delta ~= 0 and redis.call('EXISTS', key) == 1 then
    redis.call('INCRBY', key, string.format('%d', delta))
  end
end
local function undo(res_key, exp_key, rid, used_tokens, used_cost)
  redis.call('ZREM', exp_key, rid)
  local r = redis.call('HMGET', res_key, 'tokens', 'cost', 'day', 'month', 'costk', 'uday', 'tpm', 'utpm',
    'kday')
  if not r[1] then return 0 end
  local dt = used_tokens - tonumber(r[1])
  local dc = used_cost - tonumber(r[2])
  incr_if_exists(r[3], dt)
  incr_if_exists(r[4], dt)
  incr_if_exists(r[5], dc)
  incr_if_exists(r[6], dt)
  incr_if_exists(r[7], dt)
  incr_if_exists(r[8], dt)
  if r[9] then incr_if_exists(r[9], dt) end
  redis.call('DEL', res_key)
  return 1
end
"""

# KEYS: 1 policy, 2 day tokens, 3 month tokens, 4 month cost, 5 user day tokens ('' key when no user),
#       6/7 rpm current/previous minute, 8/9 tpm, 10/11 user rpm, 12/13 user tpm, 14 reservation, 15 expiries,
#       16 API key day tokens, 17/18 API key rpm current/previous minute
# ARGV: 1 tokens, 2 cost units, 3 now, 4 weight of the previous minute, 5 expires at, 6 has user,
#       7 day ttl, 8 month ttl, 9 request id, 10 reservation key prefix, 11 model, 12 user id,
#       13 has API key, 14 API key daily tokens ('' none), 15 API key rpm ('' none)
# An API key's day counter exists only while the key has a daily budget (it is rebuilt from the records
# when one is set); while it exists it is kept exact, so it can be trusted whenever the budget is checked.
RESERVE_SCRIPT = (
    _RELEASE_FUNCTION
    + """
local now = tonumber(ARGV[3])
for _, rid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[15], '-inf', now, 'LIMIT', 0, 20)) do
  undo(ARGV[10] .. rid, KEYS[15], rid, 0, 0)
end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'nopolicy'} end
local p = redis.call('HMGET', KEYS[1], 'kill', 'day_tokens', 'month_tokens', 'month_spend',
  'user_day_tokens', 'rpm', 'tpm', 'user_rpm', 'user_tpm', 'kill_reason')
if p[1] == '1' then return {'killed', p[10] or ''} end
if redis.call('EXISTS', KEYS[14]) == 1 then return {'ok', 'existing'} end
local has_user = ARGV[6] == '1'
local function limit(v) if v == false or v == nil or v == '' then return nil end return tonumber(v) end
local user_cap = limit(p[5])
local has_key = ARGV[13] == '1'
local key_cap = has_key and limit(ARGV[14]) or nil
if redis.call('EXISTS', KEYS[2]) == 0 or redis.call('EXISTS', KEYS[3]) == 0
   or redis.call('EXISTS', KEYS[4]) == 0 or (has_user and redis.call('EXISTS', KEYS[5]) == 0)
   or (key_cap and redis.call('EXISTS', KEYS[16]) == 0) then
  return {'init'}
end
local tokens = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local weight = tonumber(ARGV[4])
local function window(cur, prev)
  return tonumber(redis.call('GET', cur) or '0') + math.floor(tonumber(redis.call('GET', prev) or '0') * weight)
end
local rpm = limit(p[6])
if rpm and window(KEYS[6], KEYS[7]) + 1 > rpm then return {'rpm', tostring(rpm)} end
local tpm = limit(p[7])
if tpm and window(KEYS[8], KEYS[9]) + tokens > tpm then return {'tpm', tostring(tpm)} end
if has_user then
  local urpm = limit(p[8])
  if urpm and window(KEYS[10], KEYS[11]) + 1 > urpm then return {'user_rpm', tostring(urpm)} end
  local utpm = limit(p[9])
  if utpm and window(KEYS[12], KEYS[13]) + tokens > utpm then return {'user_tpm', tostring(utpm)} end
end
if has_key then
  local krpm = limit(ARGV[15])
  if krpm and window(KEYS[17], KEYS[18]) + 1 > krpm then return {'key_rpm', tostring(krpm)} end
end
local day_used = tonumber(redis.call('GET', KEYS[2]))
if day_used + tokens > tonumber(p[2]) then return {'day', tostring(day_used), p[2]} end
local month_used = tonumber(redis.call('GET', KEYS[3]))
if month_used + tokens > tonumber(p[3]) then return {'month', tostring(month_used), p[3]} end
local cost_used = tonumber(redis.call('GET', KEYS[4]))
if cost_used + cost > tonumber(p[4]) then return {'spend', tostring(cost_used), p[4]} end
if has_user and user_cap then
  local user_used = tonumber(redis.call('GET', KEYS[5]))
  if user_used + tokens > user_cap then return {'user_day', tostring(user_used), tostring(user_cap)} end
end
if key_cap then
  local key_used = tonumber(redis.call('GET', KEYS[16]))
  if key_used + tokens > key_cap then return {'key_day', tostring(key_used), tostring(key_cap)} end
end
redis.call('INCRBY', KEYS[2], ARGV[1])
redis.call('INCRBY', KEYS[3], ARGV[1])
redis.call('INCRBY', KEYS[4], ARGV[2])
local uday, utpm_key = '', ''
if has_user then
  uday = KEYS[5]
  utpm_key = KEYS[12]
  redis.call('INCRBY', KEYS[5], ARGV[1])
  redis.call('INCR', KEYS[10])
  redis.call('EXPIRE', KEYS[10], 120)
  redis.call('INCRBY', KEYS[12], ARGV[1])
  redis.call('EXPIRE', KEYS[12], 120)
end
local kday = ''
if has_key then
  redis.call('INCR', KEYS[17])
  redis.call('EXPIRE', KEYS[17], 120)
  if redis.call('EXISTS', KEYS[16]) == 1 then
    kday = KEYS[16]
    redis.call('INCRBY', KEYS[16], ARGV[1])
  end
end
redis.call('INCR', KEYS[6])
redis.call('EXPIRE', KEYS[6], 120)
redis.call('INCRBY', KEYS[8], ARGV[1])
redis.call('EXPIRE', KEYS[8], 120)
redis.call('HSET', KEYS[14], 'tokens', ARGV[1], 'cost', ARGV[2], 'day', KEYS[2], 'month', KEYS[3],
  'costk', KEYS[4], 'uday', uday, 'tpm', KEYS[8], 'utpm', utpm_key, 'model', ARGV[11], 'user', ARGV[12],
  'expires_at', ARGV[5], 'kday', kday)
redis.call('ZADD', KEYS[15], ARGV[5], ARGV[9])
return {'ok', 'new'}
"""
)

# KEYS: 1 reservation, 2 expiries, 3 day, 4 month, 5 cost, 6 user day ('' when none)
# ARGV: 1 request id, 2 tokens used, 3 cost units used
# When the reservation is gone (it expired and was swept), the actual usage is still counted.
SETTLE_SCRIPT = (
    _RELEASE_FUNCTION
    + """
local tokens, cost = tonumber(ARGV[2]), tonumber(ARGV[3])
if undo(KEYS[1], KEYS[2], ARGV[1], tokens, cost) == 1 then return 1 end
incr_if_exists(KEYS[3], tokens)
incr_if_exists(KEYS[4], tokens)
incr_if_exists(KEYS[5], cost)
incr_if_exists(KEYS[6], tokens)
return 0
"""
)

# KEYS: 1 reservation, 2 expiries; ARGV: 1 request id
RELEASE_SCRIPT = _RELEASE_FUNCTION + "return undo(KEYS[1], KEYS[2], ARGV[1], 0, 0)"

# KEYS: 1 expiries; ARGV: 1 now, 2 reservation key prefix
SWEEP_SCRIPT = (
    _RELEASE_FUNCTION
    + """
local released = 0
for _, rid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 500)) do
  released = released + undo(ARGV[2] .. rid, KEYS[1], rid, 0, 0)
end
return released
"""
)

# KEYS: counters; ARGV: value and ttl per key. Only sets a counter nobody else has set yet.
INIT_SCRIPT = """
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[2 * i - 1], 'NX', 'EX', ARGV[2 * i])
end
return 1
"""

# KEYS: 1 policy; ARGV: 1 version, 2 only-if-absent flag, then field, value pairs.
# Never replaces a newer version with an older one (a lazy load racing an admin's change).
PUBLISH_SCRIPT = """
local current = redis.call('HGET', KEYS[1], 'version')
if current and (ARGV[2] == '1' or tonumber(current) > tonumber(ARGV[1])) then return 0 end
redis.call('DEL', KEYS[1])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""

# KEYS: 1 breaker; ARGV: 1 now, 2 threshold, 3 window seconds, 4 cooldown seconds, 5 error summary
BREAKER_FAILURE_SCRIPT = """
local now = tonumber(ARGV[1])
local h = redis.call('HMGET', KEYS[1], 'failures', 'last_failure_at', 'opened_until')
local failures = tonumber(h[1] or '0')
local last = tonumber(h[2] or '0')
local opened_until = tonumber(h[3] or '0')
redis.call('HSET', KEYS[1], 'last_failure_at', ARGV[1], 'last_error', ARGV[5])
if opened_until > 0 and now >= opened_until then
  redis.call('HSET', KEYS[1], 'opened_until', now + tonumber(ARGV[4]), 'failures', 0)
  redis.call('HINCRBY', KEYS[1], 'times_opened', 1)
  return 'open'
end
if now - last > tonumber(ARGV[3]) then failures = 0 end
failures = failures + 1
if failures >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'opened_until', now + tonumber(ARGV[4]), 'failures', 0)
  redis.call('HINCRBY', KEYS[1], 'times_opened', 1)
  return 'open'
end
redis.call('HSET', KEYS[1], 'failures', failures)
return 'closed'
"""


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=30)


def client() -> redis.Redis:
    return _client(settings.GATEWAY_REDIS_URL)


@functools.cache
def _script(url: str, source: str) -> Any:
    return _client(url).register_script(source)


def run(source: str, keys: list[str], args: list[Any]) -> Any:
    """EVALSHA the script (loading it on first use), atomically on the Redis server."""
    return _script(settings.GATEWAY_REDIS_URL, source)(keys=keys, args=args)


def namespace() -> str:
    """Keys are namespaced by database, so two deployments (or a test run) sharing a Redis never meet."""
    return str(settings.GATEWAY_REDIS_NAMESPACE or connection.settings_dict["NAME"])


def tenant_prefix(tenant_schema: str) -> str:
    return f"gw:{{{namespace()}:{tenant_schema}}}"


def breaker_key(alias: str) -> str:
    return f"gw:{{{namespace()}}}:breaker:{alias}"


def catalogue_version_key() -> str:
    """Bumped after every committed catalogue change; each process reloads its cached catalogue when it moves."""
    return f"gw:{{{namespace()}}}:catalogue:version"


def decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def hash_as_dict(raw: dict[Any, Any]) -> dict[str, str]:
    return {decode(k): decode(v) for k, v in cast(dict[Any, Any], raw).items()}
