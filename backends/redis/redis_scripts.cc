// The redis:// backend's scripts (redis_scripts.h says the layout they keep).
//
// Each script makes every check before its first write, so that a refused write
// changes nothing; the "#!lua" line makes Redis refuse the whole script up front when
// it refuses writes (OOM at maxmemory, MISCONF when persistence fails, a replica).
// Numbers go back to Redis through num(): Lua holds them as doubles, and the exact
// integers below 2^53 (versions, Unix milliseconds) print whole.
#include "backends/redis/redis_scripts.h"

#include <string>

namespace sessionctx::redis {
namespace {

constexpr char kPrelude[] = R"lua(#!lua
local key = KEYS[1]
local function num(x) return string.format('%d', x) end
-- live: the session's metadata while it lives at `now` (the caller's clock), else nil.
local function live(now)
  local m = redis.call('HMGET', key, 'v', 'x', 'customerId', 'n', 'k')
  if not m[1] or (m[2] and tonumber(m[2]) <= now) then return nil end
  return {v = tonumber(m[1]), customer = m[3], n = tonumber(m[4]), k = tonumber(m[5])}
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
-- put: the key replaced by the record in ARGV[first..] (field, value, …), with
-- Redis's own expiry `ttl` milliseconds from now ('' : none).
local function put(first, ttl)
  redis.call('DEL', key)
  for i = first, #ARGV, 2000 do
    redis.call('HSET', key, unpack(ARGV, i, math.min(i + 1999, #ARGV)))
  end
  if ttl ~= '' then redis.call('PEXPIRE', key, ttl) end
end
-- stamp: what every write leaves: version + 1, modifiedAt, the size and count, and
-- for an anonymous session the sliding expiry.
local function stamp(s, now, ttl, n, k)
  if s.customer then
    redis.call('HSET', key, 'v', num(s.v + 1), 'mt', num(now), 'n', num(n), 'k', num(k))
  else
    redis.call('HSET', key, 'v', num(s.v + 1), 'mt', num(now), 'n', num(n), 'k', num(k),
               'x', num(now + ttl))
    redis.call('PEXPIRE', key, num(ttl))
  end
end
-- grown: the size after the version's digits change.
local function grown(s) return s.n + #num(s.v + 1) - #num(s.v) end
)lua";

// create: ARGV now, ttl ('' never), the record's fields and values.
constexpr char kCreateBody[] = R"lua(
local s = live(tonumber(ARGV[1]))
if s then return {2, s.v} end
put(3, ARGV[2])
return {0, 1}
)lua";

// replace (compare-and-set of a whole record): ARGV now, expected version, ttl, fields.
constexpr char kReplaceBody[] = R"lua(
local s = live(tonumber(ARGV[1]))
if not s then return {1, 0} end
if tonumber(ARGV[2]) ~= s.v then return {3, s.v} end
put(4, ARGV[3])
return {0, 0}
)lua";

// delete: ARGV now, expected version ('' any).
constexpr char kDeleteBody[] = R"lua(
local s = live(tonumber(ARGV[1]))
if not s then return {1, 0} end
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= s.v then return {3, s.v} end
redis.call('DEL', key)
return {0, 0}
)lua";

// attribute: ARGV now, ttl, max bytes, guard, expected version, the quoted name, and
// the value's JSON text (none: remove the attribute).
constexpr char kAttributeBody[] = R"lua(
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local s = live(now)
if not s then return {1, 0} end
local no = refused(s, ARGV[4], ARGV[5])
if no then return no end
local field, value = ARGV[6], ARGV[7]
local old = redis.call('HSTRLEN', key, field)
if not value and old == 0 then return {6, s.v} end
local n, k = grown(s) - member(#field, old), s.k
if old > 0 then k = k - 1 end
if value then n, k = n + member(#field, #value), k + 1 end
n = n - empty(s.k) + empty(k)
if value and n > tonumber(ARGV[3]) then return {5, n} end
if value then redis.call('HSET', key, field, value) else redis.call('HDEL', key, field) end
stamp(s, now, ttl, n, k)
return {0, s.v + 1}
)lua";

// patch: ARGV now, ttl, max bytes, guard, expected version, '1' to empty the context
// first, the count of base fields, then per base field its name and quoted value
// ('' removes it), then per context member a kind ('s' set, 'd' remove, 'm' set
// unless an object is stored: merging is the caller's, kMerge), its quoted key and
// its value's JSON text.
constexpr char kPatchBody[] = R"lua(
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local s = live(now)
if not s then return {1, 0} end
local no = refused(s, ARGV[4], ARGV[5])
if no then return no end
local n, k = grown(s), s.k
local clear, cleared = ARGV[6] == '1', {}
if clear then
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    if string.byte(all[i], 1) == 34 then
      n = n - member(#all[i], #all[i + 1])
      cleared[#cleared + 1] = all[i]
    end
  end
  k = 0
end
local members = 8 + 2 * tonumber(ARGV[7])
for i = 8, members - 1, 2 do
  local f = ARGV[i]
  n = n - member(#f + 2, redis.call('HSTRLEN', key, f)) + member(#f + 2, #ARGV[i + 1])
end
for i = members, #ARGV, 3 do
  local kind, f = ARGV[i], ARGV[i + 1]
  local old = 0
  if not clear then old = redis.call('HSTRLEN', key, f) end
  if kind == 'm' and old > 0 and string.byte(redis.call('HGET', key, f), 1) == 123 then
    return {7, s.v}
  end
  if old > 0 then n, k = n - member(#f, old), k - 1 end
  if kind ~= 'd' then n, k = n + member(#f, #ARGV[i + 2]), k + 1 end
end
n = n - empty(s.k) + empty(k)
if n > tonumber(ARGV[3]) then return {5, n} end
for i = 1, #cleared, 2000 do
  redis.call('HDEL', key, unpack(cleared, i, math.min(i + 1999, #cleared)))
end
for i = 8, members - 1, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', key, ARGV[i])
  else redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
end
for i = members, #ARGV, 3 do
  if ARGV[i] == 'd' then redis.call('HDEL', key, ARGV[i + 1])
  else redis.call('HSET', key, ARGV[i + 1], ARGV[i + 2]) end
end
stamp(s, now, ttl, n, k)
return {0, s.v + 1}
)lua";

// import: ARGV now, '1' to overwrite newer sessions, the record's version, ttl, fields.
constexpr char kImportBody[] = R"lua(
local s = live(tonumber(ARGV[1]))
if s and ARGV[2] ~= '1' and s.v > tonumber(ARGV[3]) then return {8, s.v} end
put(5, ARGV[4])
return {0, 0}
)lua";

struct Sources {
  std::string text[kScriptCount];
  Sources() {
    const char* bodies[kScriptCount] = {kCreateBody,    kReplaceBody, kDeleteBody,
                                        kAttributeBody, kPatchBody,   kImportBody};
    for (int i = 0; i < kScriptCount; ++i) text[i] = std::string(kPrelude) + bodies[i];
  }
};

}  // namespace

const char* ScriptSource(Script script) {
  static const Sources* sources = new Sources();
  return sources->text[script].c_str();
}

}  // namespace sessionctx::redis
