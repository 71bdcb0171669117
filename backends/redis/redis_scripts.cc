// The redis:// backend's scripts (redis_scripts.h says the layout they keep).
//
// Each script makes every check before its first write, so that a refused write
// changes nothing; the "#!lua" line makes Redis refuse the whole script up front when
// it refuses writes (OOM at maxmemory, MISCONF when persistence fails, a replica).
// Numbers go back to Redis through num(): Lua holds them as doubles, and the exact
// integers below 2^53 (versions, Unix milliseconds) print whole.
#include "backends/redis/redis_scripts.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace sessionctx::redis {
namespace {

// The prelude follows the "#!lua" line and the store's settings (Settings below):
// events (whether to keep the feed), keep (events kept), grace (ms), prefix.
constexpr char kPrelude[] = R"lua(
local key = KEYS[1]
local function num(x) return string.format('%d', x) end
-- seq: N of an event's entry id 0-N
local function seq(id) return tonumber(string.match(id, '^0%-(%d+)$')) end
-- name: the session's name in the feed and the expiry index, "<tenant>/<id>"
local name
if bucketed then name = string.sub(key, string.find(key, '}', #prefix + 1, true) + 1)
else name = string.sub(key, #prefix + 2, -2) end
-- the customerId the key held before this script ran (quoted; false: none), and its
-- version (false: no key), set by read
local was, old = false, false
-- read: HMGET of the metadata and then `fields` (in chunks: Lua's stack is bounded);
-- returns the session while it lives at `now` (the caller's clock), or nil; the
-- fields' values (false: absent); and whether the key exists (live or not).
local function read(now, fields)
  local m = redis.call('HMGET', key, 'v', 'x', 'customerId', 'n', 'k', unpack(fields, 1, math.min(#fields, 1000)))
  for i = 1001, #fields, 1000 do
    local more = redis.call('HMGET', key, unpack(fields, i, math.min(i + 999, #fields)))
    for j = 1, #more do m[#m + 1] = more[j] end
  end
  local values = {}
  for i = 6, #m do values[i - 5] = m[i] end
  was, old = m[3], m[1]
  if not m[1] or (m[2] and tonumber(m[2]) <= now) then return nil, values, m[1] ~= false end
  return {v = tonumber(m[1]), customer = m[3], n = tonumber(m[4]), k = tonumber(m[5])}, values, true
end
-- refused: the answer when the guard ('' none, '-' anonymous sessions only, '=' and a
-- quoted customer id) or the expected version ('' none) refuses the write, else nil.
local function refused(s, guard, expected)
  if guard ~= '' and s.customer and s.customer ~= string.sub(guard, 2) then return {4, 0} end
  if expected ~= '' and tonumber(expected) ~= s.v then return {3, s.v} end
  return nil
end
-- member: the bytes a member of `qlen` quoted key bytes and `vlen` value bytes adds.
local function member(qlen, vlen)
  if vlen == 0 then return 0 end
  return qlen + vlen + 2
end
-- empty: the byte an empty context "{}" takes beyond the braces of a non-empty one.
local function empty(k)
  if k == 0 then return 1 end
  return 0
end
-- chunked: `command` on the key with the elements of `list`, a thousand at a time.
local function chunked(command, list, first)
  for i = first or 1, #list, 1000 do
    redis.call(command, key, unpack(list, i, math.min(i + 999, #list)))
  end
end
-- emit: the write's event (type `kind`, the session's `version`) appended to the feed.
local function emit(kind, version, now)
  if not events then return end
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', keep, '0-*', 's', name, 't', kind,
             'v', num(version), 'at', num(now))
end
-- expiry: the session's expiry (Unix ms) in the expiry index; nil: none (a customer
-- session, or one deleted).
local function expiry(at)
  if not events then return end
  if at then redis.call('ZADD', KEYS[3], num(at), name)
  else redis.call('ZREM', KEYS[3], name) end
end
-- expired: an expired session the write finds (`present` but not live) gets its
-- `expired` event first.
local function expired(present, now)
  if present and old then emit('x', tonumber(old), now) end
end
-- put: the key replaced by the record in ARGV[first..] (field, value, …), with
-- Redis's own expiry `ttl` milliseconds from now ('' : none), a grace period later
-- when the sweep expires sessions; `present`: the key exists (an expired session, or
-- the one replaced). Returns the record's version.
local function put(first, ttl, present)
  if present then redis.call('DEL', key) end
  chunked('HSET', ARGV, first)
  if ttl ~= '' then redis.call('PEXPIRE', key, num(tonumber(ttl) + grace)) end
  if not events then return 0 end
  local vx = redis.call('HMGET', key, 'v', 'x')
  expiry(vx[2] and tonumber(vx[2]))
  return tonumber(vx[1])
end
-- stamp: what every write leaves, in one HSET with the write's own `sets` (pairs):
-- version + 1, modifiedAt, the size and count, and for an anonymous session the
-- sliding expiry.
local function stamp(s, now, ttl, n, k, sets)
  if #sets > 1000 then
    chunked('HSET', sets)
    sets = {}
  end
  if s.customer then
    redis.call('HSET', key, 'v', num(s.v + 1), 'mt', num(now), 'n', num(n), 'k', num(k), unpack(sets))
  else
    redis.call('HSET', key, 'v', num(s.v + 1), 'mt', num(now), 'n', num(n), 'k', num(k),
               'x', num(now + ttl), unpack(sets))
    redis.call('PEXPIRE', key, num(ttl + grace))
    expiry(now + ttl)
  end
  emit('u', s.v + 1, now)
end
-- grown: the size after the version's digits change.
local function grown(s) return s.n + #num(s.v + 1) - #num(s.v) end
local none = {}
)lua";

// create: ARGV now, ttl ('' never), the record's fields and values.
constexpr char kCreateBody[] = R"lua(
local now = tonumber(ARGV[1])
local s, _, present = read(now, none)
if s then return {2, s.v} end
expired(present, now)
emit('c', put(3, ARGV[2], present), now)
return {0, 1, was or ''}
)lua";

// replace (compare-and-set of a whole record): ARGV now, expected version, ttl, fields.
constexpr char kReplaceBody[] = R"lua(
local now = tonumber(ARGV[1])
local s = read(now, none)
if not s then return {1, 0} end
if tonumber(ARGV[2]) ~= s.v then return {3, s.v} end
emit('u', put(4, ARGV[3], true), now)
return {0, 0, was or ''}
)lua";

// delete: ARGV now, expected version ('' any). An expired session it finds goes, with
// its `expired` event, when the store keeps a feed (the answer is still kNotFound).
constexpr char kDeleteBody[] = R"lua(
local now = tonumber(ARGV[1])
local s, _, present = read(now, none)
if not s then
  if present and events then
    expired(present, now)
    redis.call('DEL', key)
    expiry(nil)
  end
  return {1, 0}
end
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= s.v then return {3, s.v} end
redis.call('DEL', key)
emit('d', s.v, now)
expiry(nil)
return {0, 0, was or ''}
)lua";

// attribute: ARGV now, ttl, max bytes, guard, expected version, the quoted name, and
// the value's JSON text (none: remove the attribute).
constexpr char kAttributeBody[] = R"lua(
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local field, value = ARGV[6], ARGV[7]
local s, old = read(now, {field})
if not s then return {1, 0} end
local no = refused(s, ARGV[4], ARGV[5])
if no then return no end
old = old[1] and #old[1] or 0
if not value and old == 0 then return {6, s.v} end
local n, k = grown(s) - member(#field, old), s.k
if old > 0 then k = k - 1 end
if value then n, k = n + member(#field, #value), k + 1 end
n = n - empty(s.k) + empty(k)
if value and n > tonumber(ARGV[3]) then return {5, n} end
if value then
  stamp(s, now, ttl, n, k, {field, value})
else
  redis.call('HDEL', key, field)
  stamp(s, now, ttl, n, k, none)
end
return {0, s.v + 1}
)lua";

// patch: ARGV now, ttl, max bytes, guard, expected version, '1' to empty the context
// first, the count of base fields, then per base field its name and quoted value
// ('' removes it), then per context member a kind ('s' set, 'd' remove, 'm' set
// unless an object is stored: merging is the caller's, kMerge), its quoted key and
// its value's JSON text.
constexpr char kPatchBody[] = R"lua(
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local clear, members = ARGV[6] == '1', 8 + 2 * tonumber(ARGV[7])
local fields = {}
for i = 8, members - 1, 2 do fields[#fields + 1] = ARGV[i] end
for i = members, #ARGV, 3 do fields[#fields + 1] = ARGV[i + 1] end
local s, old = read(now, fields)
if not s then return {1, 0} end
local no = refused(s, ARGV[4], ARGV[5])
if no then return no end
local n, k, sets, dels = grown(s), s.k, {}, {}
if clear then
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    if string.byte(all[i], 1) == 34 then
      n = n - member(#all[i], #all[i + 1])
      dels[#dels + 1] = all[i]
    end
  end
  k = 0
end
local j = 1
for i = 8, members - 1, 2 do
  local f, v = ARGV[i], ARGV[i + 1]
  n = n - member(#f + 2, old[j] and #old[j] or 0) + member(#f + 2, #v)
  if v == '' then dels[#dels + 1] = f else sets[#sets + 1] = f; sets[#sets + 1] = v end
  j = j + 1
end
for i = members, #ARGV, 3 do
  local kind, f, v = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local stored = old[j]
  j = j + 1
  if clear then stored = false end
  if kind == 'm' and stored and string.byte(stored, 1) == 123 then return {7, s.v} end
  if stored then n, k = n - member(#f, #stored), k - 1 end
  if kind == 'd' then
    if stored then dels[#dels + 1] = f end
  else
    n, k = n + member(#f, #v), k + 1
    sets[#sets + 1] = f
    sets[#sets + 1] = v
  end
end
n = n - empty(s.k) + empty(k)
if n > tonumber(ARGV[3]) then return {5, n} end
chunked('HDEL', dels)
stamp(s, now, ttl, n, k, sets)
return {0, s.v + 1}
)lua";

// import: ARGV now, '1' to overwrite newer sessions, the record's version, ttl, fields.
constexpr char kImportBody[] = R"lua(
local now = tonumber(ARGV[1])
local s, _, present = read(now, none)
if s and ARGV[2] ~= '1' and s.v > tonumber(ARGV[3]) then return {8, s.v} end
if not s then expired(present, now) end
local kind = 'c'
if s then kind = 'u' end
emit(kind, put(5, ARGV[4], true), now)
return {0, 0, was or ''}
)lua";

// end (a customer's logout everywhere): ARGV now, the quoted customer id. Deletes the
// session while it lives and belongs to that customer; else changes nothing.
constexpr char kEndBody[] = R"lua(
local now = tonumber(ARGV[1])
local s = read(now, none)
if not s or s.customer ~= ARGV[2] then return {1, 0} end
redis.call('DEL', key)
emit('e', s.v, now)
expiry(nil)
return {0, s.v}
)lua";

// index (KEYS[1] a customer's index): ARGV now, the session's expiry (score; 'inf'
// never), the session id. Adds the session, drops what expired, and gives the index
// the expiry of its last session (none while one never expires).
constexpr char kIndexBody[] = R"lua(
redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[1])
redis.call('ZADD', key, ARGV[2], ARGV[3])
local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
if top[2] == 'inf' then
  redis.call('PERSIST', key)
else  -- relative to the caller's clock, as the sessions' own expiry
  redis.call('PEXPIRE', key, num(math.max(1, tonumber(top[2]) - tonumber(ARGV[1]))))
end
return {0, 0}
)lua";

// sweep: (redis_scripts.h) the sessions due in the expiry index, each deleted with its
// `expired` event (a session Redis already dropped, past the grace period, is
// reported with version 0); then the stream trimmed to the count kept and by age.
constexpr char kSweepBody[] = R"lua(
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1], 'LIMIT', 0, limit)
for i = 1, #due do
  name = due[i]
  if bucketed then key = prefix .. '{' .. ARGV[5] .. '}' .. name
  else key = prefix .. '{' .. name .. '}' end
  local m = redis.call('HMGET', key, 'v', 'x')
  if m[1] and m[2] and tonumber(m[2]) > now then
    redis.call('ZADD', KEYS[3], m[2], name)
  else
    if m[1] then redis.call('DEL', key) end
    emit('x', tonumber(m[1] or '0'), now)
    redis.call('ZREM', KEYS[3], name)
  end
end
if ARGV[3] ~= '' then redis.call('XTRIM', KEYS[2], 'MAXLEN', ARGV[3]) end
local oldest = tonumber(ARGV[4])
while true do
  local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 100)
  local young = nil
  for i = 1, #first do
    local f = first[i][2]
    for j = 1, #f, 2 do
      if f[j] == 'at' and tonumber(f[j + 1]) >= oldest then young = first[i][1] end
    end
    if young then break end
  end
  if young then
    redis.call('XTRIM', KEYS[2], 'MINID', young)
    break
  end
  if #first == 0 then break end
  redis.call('XTRIM', KEYS[2], 'MINID', '0-' .. num(seq(first[#first][1]) + 1))
end
return {0, #due}
)lua";

// read events: (redis_scripts.h) the stream's entries after ARGV[1]. A position is
// gone when entries after it were trimmed (positions are consecutive, so the first
// kept tells), or when it is past the newest ever given.
constexpr char kReadEventsBody[] = R"lua(
local newest, first, length = 0, nil, 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then newest = seq(info[i + 1])
    elseif info[i] == 'first-entry' and info[i + 1] then first = seq(info[i + 1][1])
    elseif info[i] == 'length' then length = info[i + 1] end
  end
end
if ARGV[1] == '' then return {0, num(newest)} end
local after = tonumber(ARGV[1])
if after > newest or (first and after + 1 < first) or (length == 0 and after < newest) then
  return {1, num(newest), first and num(first) or ''}
end
local out = {0, ARGV[1]}
local tenant = ARGV[3]
local entries = redis.call('XRANGE', KEYS[1], '(0-' .. ARGV[1], '+', 'COUNT', ARGV[2])
for i = 1, #entries do
  local position, f = num(seq(entries[i][1])), entries[i][2]
  out[2] = position
  local e = {}
  for j = 1, #f, 2 do e[f[j]] = f[j + 1] end
  if tenant == '' or string.sub(e.s, 1, #tenant + 1) == tenant .. '/' then
    out[#out + 1] = position
    out[#out + 1] = e.s
    out[#out + 1] = e.t
    out[#out + 1] = e.v
    out[#out + 1] = e.at
  end
end
return out
)lua";

// LuaString: `s` as a Lua string literal (every byte a decimal escape: any prefix).
std::string LuaString(const std::string& s) {
  std::string out = "'";
  for (unsigned char ch : s) absl::StrAppend(&out, "\\", static_cast<int>(ch));
  return out + "'";
}

}  // namespace

std::string ScriptSource(Script script, const ScriptSettings& settings) {
  const char* bodies[kScriptCount] = {
      kCreateBody, kReplaceBody, kDeleteBody, kAttributeBody, kPatchBody,
      kImportBody, kEndBody,     kIndexBody,  kSweepBody,     kReadEventsBody};
  return absl::StrCat(script == kReadEvents ? "#!lua flags=no-writes\n" : "#!lua\n",
                      "local events, keep, grace = ", settings.events ? "true" : "false",
                      ", '", settings.keep, "', ",
                      settings.events ? settings.grace_ms : 0,
                      "\nlocal prefix, bucketed = ", LuaString(settings.prefix), ", ",
                      settings.bucketed ? "true" : "false", kPrelude, bodies[script]);
}

}  // namespace sessionctx::redis
