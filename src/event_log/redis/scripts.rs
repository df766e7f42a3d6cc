//! The Lua scripts: every change to a stream and its meta hash is one
//! script, so that no other command of any instance comes between its
//! checks and its writes.
//!
//! A stream `S` has two keys: the stream itself and the hash `S:meta`
//! (`epoch`, `closed` = the end's entry ID, `ttl` in ms, `at` in Unix ms,
//! `seq` = the last writer's sequence token accepted, and `a:<key>` for
//! each attribute the stream was created with).
//! The hash is the truth about whether the stream exists. Every entry
//! carries the epoch it was written under (`e`), so a mirror that reads an
//! entry of another epoch (the stream was deleted and created again, or its
//! history was found lost) knows at once instead of filing it under its own.
//!
//! Entry fields: `e` (epoch), `data` (the event's JSON), `close` (`1`: the
//! stream ends after this entry's event, or, without `data`, after the
//! event before it), `deleted` (`1`: the stream was deleted).

use redis::Script;

/// Shared by the scripts that count a use of a stream: when it is due
/// (`due_in`), and extending its keys' life without ever shortening it
/// (`extend`), so that the keys live until the latest deadline any
/// instance asked for.
const EXPIRY: &str = r"
local function due_in(meta, idle, ago)
  local ms = nil
  if idle ~= '' then ms = tonumber(idle) end
  local ttl = redis.call('HGET', meta, 'ttl')
  if ttl then
    local left = tonumber(ttl) - tonumber(ago)
    if ms == nil or left < ms then ms = left end
  end
  local at = redis.call('HGET', meta, 'at')
  if at then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local left = tonumber(at) - now
    if ms == nil or left < ms then ms = left end
  end
  return ms
end
local function extend(key, ms)
  if ms == nil then return end
  if ms < 1 then ms = 1 end
  local current = redis.call('PTTL', key)
  if current == -1 or (current >= 0 and current < ms) then
    redis.call('PEXPIRE', key, math.floor(ms))
  end
end
";

/// Byte-wise order of two strings (Lua's `<` follows the server's locale).
const AFTER: &str = r"
local function after(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
";

/// Publish and close. KEYS: stream, meta. ARGV: epoch, keep, data (`''`:
/// none), close (`1`/`0`), idle in ms (`''`: none), whether a sequence
/// token guards the append (`1`/`0`), the token.
///
/// Appends only while the meta hash holds the writer's epoch and no close:
/// errors `GONE` (no meta), `EPOCH <epoch in force>`, `CLOSED <end ID>`.
/// Closing a closed stream without an event answers its end. A sequence
/// token that does not sort after the last one accepted (byte-wise) refuses
/// the append; an accepted one is kept in the same step. Returns `{ID, 1}`:
/// the entry's ID, or the end for a close; `{end ID, 0}`: closed already;
/// `{last token, 2}`: refused, out of order; `{newest ID, 3}`: nothing to
/// append (a token alone).
const APPEND: &str = r"
local meta = redis.call('HMGET', KEYS[2], 'epoch', 'closed', 'seq')
if not meta[1] then return redis.error_reply('GONE the stream does not exist') end
if meta[1] ~= ARGV[1] then return redis.error_reply('EPOCH ' .. meta[1]) end
local close = ARGV[4] == '1'
if meta[2] then
  if close and ARGV[3] == '' then return {meta[2], 0} end
  return redis.error_reply('CLOSED ' .. meta[2])
end
if ARGV[6] == '1' then
  if meta[3] and not after(ARGV[7], meta[3]) then return {meta[3], 2} end
  redis.call('HSET', KEYS[2], 'seq', ARGV[7])
end
local id
if ARGV[3] == '' then
  -- The end is the newest entry: an event, since nothing follows a close.
  local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  id = '0-0'
  if newest[1] then id = newest[1][1] end
  if not close then return {id, 3} end
  -- One more kept: the marker is not an event.
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', tonumber(ARGV[2]) + 1, '*',
    'e', ARGV[1], 'close', '1')
elseif close then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*',
    'e', ARGV[1], 'data', ARGV[3], 'close', '1')
else
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*',
    'e', ARGV[1], 'data', ARGV[3])
end
if close then redis.call('HSET', KEYS[2], 'closed', id) end
local ms = due_in(KEYS[2], ARGV[5], 0)
extend(KEYS[1], ms)
extend(KEYS[2], ms)
return {id, 1}
";

/// Loads a stream, creating it if asked. KEYS: stream, meta. ARGV: mode
/// (`get`: nil when missing, not counted as a use; `find`: nil when
/// missing; `open`: create when missing; `create`: error `EXISTS` when
/// present), a new epoch, ttl in ms (`''`), expiry in Unix ms (`''`), idle
/// in ms (`''`), how many entries, then the attributes of a new stream as
/// key, value pairs.
///
/// A new stream starts empty (a leftover stream key of a deleted one is
/// removed). Returns `{meta (HGETALL), newest entries, TIME, XINFO STREAM
/// or nil, created}`, all read at one instant: an entry added between two
/// separate reads could otherwise be counted as seen and never read.
const LOAD: &str = r"
local created = 0
if redis.call('HEXISTS', KEYS[2], 'epoch') == 0 then
  if ARGV[1] == 'get' or ARGV[1] == 'find' then return false end
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[2], 'epoch', ARGV[2])
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], 'ttl', ARGV[3]) end
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], 'at', ARGV[4]) end
  for i = 7, #ARGV - 1, 2 do
    redis.call('HSET', KEYS[2], 'a:' .. ARGV[i], ARGV[i + 1])
  end
  created = 1
elseif ARGV[1] == 'create' then
  return redis.error_reply('EXISTS the stream exists')
end
if ARGV[1] ~= 'get' then
  local ms = due_in(KEYS[2], ARGV[5], 0)
  extend(KEYS[1], ms)
  extend(KEYS[2], ms)
end
local meta = redis.call('HGETALL', KEYS[2])
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[6])
local time = redis.call('TIME')
local info = false
if redis.call('EXISTS', KEYS[1]) == 1 then
  info = redis.call('XINFO', 'STREAM', KEYS[1])
end
return {meta, newest, time, info, created}
";

/// A look at one stream mirrored here, before a request uses it: its epoch
/// (nil: gone) and its newest entry ID (`''`: none), so that the mirror can
/// be brought up to that entry first; and a use counted, unless told not
/// to. KEYS: meta, stream. ARGV: idle in ms (`''`: none; `-`: count no
/// use).
const LOOK: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then return {false, ''} end
if ARGV[1] ~= '-' then
  local ms = due_in(KEYS[1], ARGV[1], 0)
  extend(KEYS[2], ms)
  extend(KEYS[1], ms)
end
local newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local id = ''
if newest[1] then id = newest[1][1] end
return {epoch, id}
";

/// After a reconnect: whether a mirror can read on from its last entry.
/// KEYS: stream, meta. ARGV: the last ID, whether the mirror applied it
/// (`1`/`0`), keep.
///
/// Returns `{epoch or nil, contiguous, IDs}`: contiguous when the last ID
/// is still in the stream (trimming removes the oldest first, so nothing
/// after it was removed) or, before any entry was applied, when the stream
/// is shorter than `keep`; otherwise the newest `keep` IDs, to tell
/// trimming from lost writes.
const RESYNC: &str = r"
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then return {false, 0, {}} end
local contiguous
if ARGV[2] == '1' then
  contiguous = #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 1
else
  contiguous = redis.call('XLEN', KEYS[1]) < tonumber(ARGV[3])
end
if contiguous then return {epoch, 1, {}} end
local ids = {}
for i, entry in ipairs(redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[3])) do
  ids[i] = entry[1]
end
return {epoch, 0, ids}
";

/// The reader's periodic look at the streams it mirrors: each one's epoch
/// (nil: gone), and a use to count for some. KEYS: meta and stream of each,
/// in pairs. ARGV: idle in ms (`''`: none; `-`: count no use) and the use's
/// age in ms, for each.
const SWEEP: &str = r"
local out = {}
for i = 1, #KEYS, 2 do
  local n = (i + 1) / 2
  local epoch = redis.call('HGET', KEYS[i], 'epoch')
  out[n] = epoch
  if epoch and ARGV[2 * n - 1] ~= '-' then
    local ms = due_in(KEYS[i], ARGV[2 * n - 1], ARGV[2 * n])
    extend(KEYS[i + 1], ms)
    extend(KEYS[i], ms)
  end
end
return out
";

/// Replaces the epoch ARGV[1] with ARGV[2] (history found lost) unless
/// another instance did already. KEYS: meta. Returns the epoch in force (nil:
/// the stream is gone).
const CLAIM: &str = r"
local current = redis.call('HGET', KEYS[1], 'epoch')
if current == ARGV[1] then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[2])
  return ARGV[2]
end
return current
";

/// Deletes a stream. KEYS: stream, meta. ARGV: keep, grace in ms.
///
/// The meta hash goes at once; the stream gets a `deleted` entry (which
/// wakes every instance reading it) and goes after the grace time, or when
/// the name is created again. Returns whether it existed.
const DELETE: &str = r"
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then return 0 end
redis.call('DEL', KEYS[2])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', epoch, 'deleted', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// The scripts, each hashed once.
pub(crate) struct Scripts {
    pub(crate) append: Script,
    pub(crate) load: Script,
    pub(crate) look: Script,
    pub(crate) resync: Script,
    pub(crate) sweep: Script,
    pub(crate) claim: Script,
    pub(crate) delete: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        let with_expiry = |body: &str| Script::new(&format!("{EXPIRY}{body}"));
        Self {
            append: Script::new(&format!("{EXPIRY}{AFTER}{APPEND}")),
            load: with_expiry(LOAD),
            look: with_expiry(LOOK),
            resync: Script::new(RESYNC),
            sweep: with_expiry(SWEEP),
            claim: Script::new(CLAIM),
            delete: Script::new(DELETE),
        }
    }

    /// The scripts the reader sends in pipelines (where a missing script is
    /// not loaded on demand).
    pub(crate) fn pipelined(&self) -> [&Script; 3] {
        [&self.resync, &self.sweep, &self.load]
    }
}
