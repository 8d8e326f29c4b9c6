"""The Lua scripts of :class:`~channels_redis.core.RedisChannelLayer`.

Each operation that touches more than one key, or reads and then writes, is
one script, so that it costs one round trip and runs atomically. Scripts are
called by their SHA1 digest (``EVALSHA``); only when Redis answers
``NOSCRIPT`` (it restarted, failed over, or ran ``SCRIPT FLUSH``) is the text
sent once with ``EVAL``, which also puts it back in Redis's script cache.

Every key a script touches shares one hash tag in a Cluster (see
:mod:`channels_redis.wire`), so each call stays within one hash slot.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

if TYPE_CHECKING:
    from .commands import Commands

__all__ = ["DRAIN", "GROUP_ADD", "GROUP_SEND", "PUBSUB_SEND", "SEND", "Script"]

# Helpers shared by the scripts that write to queues.
#
# queue_of() is the Lua twin of channels_redis.wire.queue_name(): the queue of
# a process-specific channel, from its non-local part (<process>.<hex>__<n>!
# queues under <process>.<hex>!). Plain searches and a cache rather than one
# pattern with backtracking: group_send runs it once per member.
#
# Counts live in hashes; the scripts read and write many fields with one
# HMGET / HSET / HDEL per thousand fields, not one call per field: a call
# from Lua costs about as much as the work it does.
#
# drop_expired() drops expired messages from the head of a queue and returns
# its new length. Deadlines of one queue grow (one expiry per layer), so
# expired messages are in front; a message whose header does not parse is
# left alone. On a process queue (counter given) the channels an expired
# message was for get their unreceived counts back.
#
# apply_acks() applies the acknowledgements at the head of KEYS and ARGV
# (see SEND) and returns how many there were. The writer merged them by
# counter and field and put each counter's together: per counter, one HMGET
# and hash_update's HSET, no TYPE and no table of amounts (Redis runs this
# with nearly every send).
_HELPERS = r"""
local process_prefixes = {}
local function queue_of(nonlocal)
  -- The last "__" (names made by new_channel() have one) must be followed
  -- by digits and the "!" that ends the non-local part ...
  local at = string.find(nonlocal, '__', 1, true)
  if at == nil then
    return nonlocal
  end
  local later = string.find(nonlocal, '__', at + 1, true)
  while later do
    at = later
    later = string.find(nonlocal, '__', at + 1, true)
  end
  if string.find(nonlocal, '^%d+!$', at + 2) == nil then
    return nonlocal
  end
  -- ... and preceded by ".<hex>"; a group's members share few prefixes.
  local prefix = string.sub(nonlocal, 1, at - 1)
  local valid = process_prefixes[prefix]
  if valid == nil then
    valid = string.find(prefix, '%.[0-9a-f]+$') ~= nil
    process_prefixes[prefix] = valid
  end
  if valid then
    return prefix .. '!'
  end
  return nonlocal
end

local function hash_numbers(key, fields)
  local values = {}
  for first = 1, #fields, 1000 do
    local chunk = redis.call('HMGET', key, unpack(fields, first, math.min(first + 999, #fields)))
    for i = 1, #chunk do
      values[first + i - 1] = tonumber(chunk[i]) or 0
    end
  end
  return values
end

local function hash_update(key, fields, values)
  -- Sets each field to its value (zero at the least). A field at zero stays:
  -- the channel's next message then updates a field instead of creating one,
  -- which for a group of a thousand members is a good part of a group_send.
  -- Once the hash holds more than 4096 fields (channels come and go), its
  -- fields at zero are deleted all at once.
  local sets = {}
  local zeroed = false
  for i = 1, #fields do
    local value = values[i]
    if value <= 0 then
      value = 0
      zeroed = true
    end
    sets[#sets + 1] = fields[i]
    sets[#sets + 1] = value
  end
  for first = 1, #sets, 2000 do
    redis.call('HSET', key, unpack(sets, first, math.min(first + 1999, #sets)))
  end
  if zeroed and redis.call('HLEN', key) > 4096 then
    local all = redis.call('HGETALL', key)
    local deletes = {}
    for i = 1, #all, 2 do
      if (tonumber(all[i + 1]) or 0) <= 0 then
        deletes[#deletes + 1] = all[i]
      end
    end
    for first = 1, #deletes, 1000 do
      redis.call('HDEL', key, unpack(deletes, first, math.min(first + 999, #deletes)))
    end
  end
end

local function uncount_all(counter, amounts)
  -- amounts: non-local part -> how many to take off. A counter that is gone
  -- (expired, or flushed) has nothing to take off, and writing to it would
  -- make a hash without an expiry; a key of another type is not ours.
  if redis.call('TYPE', counter)['ok'] ~= 'hash' then
    return
  end
  local fields = {}
  for field in pairs(amounts) do
    fields[#fields + 1] = field
  end
  if #fields == 0 then
    return
  end
  local values = hash_numbers(counter, fields)
  for i = 1, #fields do
    values[i] = values[i] - amounts[fields[i]]
  end
  hash_update(counter, fields, values)
end

local function drop_expired(key, now, length, counter)
  local amounts = {}
  while length > 0 do
    local head = redis.call('LINDEX', key, 0)
    local deadline, channels = string.match(head, '^(%d+):([^\n]*)')
    deadline = tonumber(deadline)
    if deadline == nil or deadline > now then
      break
    end
    redis.call('LPOP', key)
    length = length - 1
    if counter and string.sub(channels, 1, 1) == '!' then
      for channel in string.gmatch(string.sub(channels, 2), '[^,]+') do
        local bang = string.find(channel, '!', 1, true)
        if bang then
          local field = string.sub(channel, 1, bang)
          amounts[field] = (amounts[field] or 0) + 1
        end
      end
    end
  end
  if counter then
    uncount_all(counter, amounts)
  end
  return length
end

local function apply_acks()
  local acks = tonumber(ARGV[3])
  local first = 1
  while first <= acks do
    local counter = KEYS[first]
    local last = first
    while last < acks and KEYS[last + 1] == counter do
      last = last + 1
    end
    local fields, values = {}, {}
    for start = first, last, 1000 do
      local asked = {}
      for i = start, math.min(start + 999, last) do
        asked[#asked + 1] = ARGV[2 + 2 * i]
      end
      -- A counter (or field) that is gone has nothing to take off, and
      -- writing to it would make a hash without an expiry; a key of another
      -- type is not ours.
      local counts = redis.pcall('HMGET', counter, unpack(asked))
      if counts.err == nil then
        for j = 1, #asked do
          if counts[j] then
            fields[#fields + 1] = asked[j]
            values[#values + 1] = (tonumber(counts[j]) or 0) - tonumber(ARGV[1 + 2 * (start + j)])
          end
        end
      end
    end
    if #fields > 0 then
      hash_update(counter, fields, values)
    end
    first = last + 1
  end
  return acks
end
"""


class Script:
    """A Lua script, called by digest with a fallback to its text."""

    __slots__ = ("name", "sha", "source")

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8")).hexdigest()

    def args(self, keys: Sequence[str], args: Sequence[Any]) -> tuple[Any, ...]:
        """The arguments of ``EVALSHA`` after the digest."""
        return (len(keys), *keys, *args)

    async def run(self, commands: Commands, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run the script with *keys* and *args* on *commands*; one round trip when cached."""
        arguments = self.args(keys, args)
        try:
            return await commands.execute("EVALSHA", self.sha, *arguments)
        except NoScriptError:
            return await self.run_text(commands, keys, args)

    async def run_text(self, commands: Commands, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run the script by its text (``EVAL``), which also caches it in Redis."""
        return await commands.execute("EVAL", self.source, *self.args(keys, args))

    def __repr__(self) -> str:
        return f"<Script {self.name} {self.sha[:8]}>"


#: Appends messages to queues that have room, after applying the receiving
#: processes' acknowledgements. Called with any number of each at once:
#: concurrent sends to one shard share one round trip.
#:
#: ARGV[1]: now (ms); ARGV[2]: TTL of the keys (ms); ARGV[3]: the number A of
#: acknowledgements. KEYS[1..A]: their counter hashes; ARGV: A pairs
#: (channel's non-local part, messages received).
#: Then, per message, two KEYS (the queue, its counter hash) and three ARGV:
#: the element, the channel's capacity, and the non-local part whose count
#: it goes to ('' for an ordinary channel, whose count is its length).
#: Returns, per message, 1 if it was queued, 0 if the channel was full, -1
#: if one of its keys holds a value of another type (written by someone else).
#:
#: KEYS and ARGV are read in place, with no table per message or per batch:
#: it runs once per awaited send. commandstats, one message and one
#: acknowledgement a call (as in bench/redis_layer.py's core serial row),
#: medians of 11 interleaved runs: 12.8 us a call with a TYPE and a table of
#: amounts per acknowledgement and a table per batch, 10.9 us so (8.2 and
#: 7.6 us without the acknowledgement).
SEND = Script(
    "send",
    _HELPERS
    + r"""
local acks = apply_acks()
local now, ttl = tonumber(ARGV[1]), ARGV[2]
local queued = {}
local at = 4 + 2 * acks
for i = 1, (#KEYS - acks) / 2 do
  local queue, counter = KEYS[acks + 2 * i - 1], KEYS[acks + 2 * i]
  local element, capacity, field = ARGV[at], tonumber(ARGV[at + 1]), ARGV[at + 2]
  at = at + 3
  -- 1: queued; 0: the channel is full; -1: a key holds a value of another
  -- type (not written by this layer): this message fails, the others go on.
  local status = 1
  local count = 0
  if field == '' then
    local length = redis.pcall('LLEN', queue)
    if type(length) ~= 'number' then
      status = -1
    else
      if length >= capacity then
        length = drop_expired(queue, now, length, nil)
      end
      if length >= capacity then
        status = 0
      end
    end
  else
    count = redis.pcall('HGET', counter, field)
    if type(count) == 'table' then
      status = -1
    else
      -- A count that is not a number was not written here: it counts as 0.
      count = tonumber(count) or 0
      if count >= capacity then
        local length = redis.pcall('LLEN', queue)
        if type(length) == 'number' then
          drop_expired(queue, now, length, counter)
          count = tonumber(redis.call('HGET', counter, field)) or 0
        end
      end
      if count >= capacity then
        status = 0
      end
    end
  end
  if status == 1 then
    if type(redis.pcall('RPUSH', queue, element)) == 'table' then
      status = -1
    else
      redis.call('PEXPIRE', queue, ttl)
      if field ~= '' then
        redis.call('HSET', counter, field, count + 1)
        redis.call('PEXPIRE', counter, ttl)
      end
    end
  end
  queued[i] = status
end
return queued
""",
)

#: Adds a member to a group (or refreshes it) and forgets expired members.
#: KEYS[1]: the group's sorted set. ARGV[1]: the channel; ARGV[2]: its score;
#: ARGV[3]: TTL of the set (ms); ARGV[4]: the lowest score still alive.
GROUP_ADD = Script(
    "group_add",
    """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[4])
return 1
""",
)

#: Sends a message to every member of a group that lives on this shard.
#: The members a process has in the group get one element that lists them.
#: Full channels are skipped: the specification forbids ChannelFull here.
#: KEYS[1]: the group's sorted set. ARGV[1]: now (ms); ARGV[2]: TTL of the
#: keys (ms); ARGV[3]: the lowest score still alive; ARGV[4]: the prefix of
#: queue keys; ARGV[5]: the prefix of counter keys; ARGV[6]: the deadline
#: (ms); ARGV[7]: the payload.
#: Returns {members the message was queued for, members skipped}: a member
#: is skipped when its name could not have been added by the layer (it holds
#: ',' or a newline) or one of its keys holds a value of another type.
GROUP_SEND = Script(
    "group_send",
    _HELPERS
    + r"""
local now = tonumber(ARGV[1])
local ttl = ARGV[2]
local queue_prefix = ARGV[4]
local counter_prefix = ARGV[5]
local header = ARGV[6] .. ':'
local payload = ARGV[7]

-- One element for the members a process has in the group; returns how many
-- it was queued for.
local function send_to_process(process, queue, counter)
  local counts = hash_numbers(counter, process.fields)
  for n = 1, #process.channels do
    if counts[process.slots[n]] >= process.capacities[n] then
      -- Someone is full: expired messages may be what fills it.
      drop_expired(queue, now, redis.call('LLEN', queue), counter)
      counts = hash_numbers(counter, process.fields)
      break
    end
  end
  local recipients = {}
  local changed = {}
  for n = 1, #process.channels do
    local slot = process.slots[n]
    if counts[slot] < process.capacities[n] then
      counts[slot] = counts[slot] + 1
      changed[slot] = true
      recipients[#recipients + 1] = process.channels[n]
    end
  end
  if #recipients > 0 then
    redis.call('RPUSH', queue, header .. '!' .. table.concat(recipients, ',') .. '\n' .. payload)
    redis.call('PEXPIRE', queue, ttl)
    local fields, values = {}, {}
    for slot in pairs(changed) do
      fields[#fields + 1] = process.fields[slot]
      values[#values + 1] = counts[slot]
    end
    hash_update(counter, fields, values)
    redis.call('PEXPIRE', counter, ttl)
  end
  return #recipients
end

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local processes = {}
local order = {}
local queued = 0
local skipped = 0
for i = 1, #members, 2 do
  local channel = members[i]
  local capacity = (tonumber(members[i + 1]) or 0) % 2097152
  local bang = string.find(channel, '!', 1, true)
  if string.find(channel, '[,\n]') then
    -- Not a name the layer adds: it would break the header of an element
    -- shared with other members.
    skipped = skipped + 1
  elseif bang then
    local nonlocal = string.sub(channel, 1, bang)
    local name = queue_of(nonlocal)
    local process = processes[name]
    if process == nil then
      process = {channels = {}, slots = {}, capacities = {}, fields = {}, slot_of = {}}
      processes[name] = process
      order[#order + 1] = name
    end
    local slot = process.slot_of[nonlocal]
    if slot == nil then
      slot = #process.fields + 1
      process.fields[slot] = nonlocal
      process.slot_of[nonlocal] = slot
    end
    local n = #process.channels + 1
    process.channels[n] = channel
    process.slots[n] = slot
    process.capacities[n] = capacity
  else
    local queue = queue_prefix .. channel
    local length = redis.pcall('LLEN', queue)
    if type(length) ~= 'number' then
      skipped = skipped + 1
    else
      if length >= capacity then
        length = drop_expired(queue, now, length, nil)
      end
      if length < capacity then
        redis.call('RPUSH', queue, header .. '\n' .. payload)
        redis.call('PEXPIRE', queue, ttl)
        queued = queued + 1
      end
    end
  end
end
for _, name in ipairs(order) do
  local process = processes[name]
  local queue = queue_prefix .. name
  local counter = counter_prefix .. name
  local queue_type = redis.call('TYPE', queue)['ok']
  local counter_type = redis.call('TYPE', counter)['ok']
  if (queue_type ~= 'list' and queue_type ~= 'none')
      or (counter_type ~= 'hash' and counter_type ~= 'none') then
    skipped = skipped + #process.channels
  else
    queued = queued + send_to_process(process, queue, counter)
  end
end
return {queued, skipped}
""",
)

#: The send of the Pub/Sub layer: publishes each message to its queue's
#: Pub/Sub channel, or, when no process is subscribed, appends it to the
#: queue's backlog list, which a process drains as it subscribes. Every
#: channel's unreceived messages are counted (ordinary channels under their
#: own name), so capacities hold whichever way a message went.
#:
#: Arguments as for SEND: the acknowledgements, then, per message, two KEYS
#: (the backlog list, its counter hash) and four ARGV: the element, the
#: channel's capacity, the counted field, and the Pub/Sub channel.
#: Returns, per message, 1 if it was sent, 0 if the channel was full, -1 if
#: one of its keys holds a value of another type (written by someone else).
#:
#: Written for the common case, where it runs once per awaited send: an
#: acknowledgement is an HGET and hash_update's HSET (no TYPE, no tables of
#: amounts), and only a channel that looks full takes the path that drops
#: expired messages from its backlog. commandstats, one message and one
#: acknowledgement a call (as in bench/redis_layer.py's pubsub serial row),
#: medians of 5 interleaved runs: 17.8 us a call through send_batch's general
#: path, 14.0 us so (11.5 and 9.6 us without the acknowledgement).
PUBSUB_SEND = Script(
    "pubsub_send",
    _HELPERS
    + r"""
local acks = tonumber(ARGV[3])
for i = 1, acks do
  local counter, field = KEYS[i], ARGV[2 + 2 * i]
  -- A counter that is gone has nothing to take off (and writing to it would
  -- make a hash without an expiry); one of another type is not ours.
  local count = redis.pcall('HGET', counter, field)
  if type(count) == 'string' then
    hash_update(counter, {field}, {(tonumber(count) or 0) - tonumber(ARGV[3 + 2 * i])})
  end
end
local ttl = ARGV[2]
local sent = {}
local at = 4 + 2 * acks
for i = 1, (#KEYS - acks) / 2 do
  local backlog, counter = KEYS[acks + 2 * i - 1], KEYS[acks + 2 * i]
  local element, capacity = ARGV[at], tonumber(ARGV[at + 1])
  local field, channel = ARGV[at + 2], ARGV[at + 3]
  at = at + 4
  local status = 1
  local count = redis.pcall('HGET', counter, field)
  if type(count) == 'table' then
    -- The counter holds a value of another type, not written by this layer.
    status = -1
  else
    count = tonumber(count) or 0
    if count >= capacity then
      -- Full, unless expired messages in the backlog are what fill it.
      local length = redis.pcall('LLEN', backlog)
      if type(length) == 'number' and length > 0 then
        local left = drop_expired(backlog, tonumber(ARGV[1]), length, counter)
        if left < length and string.find(field, '!', 1, true) == nil then
          -- Backlog elements of an ordinary channel name no channel: count them here.
          uncount_all(counter, {[field] = length - left})
        end
        count = tonumber(redis.call('HGET', counter, field)) or 0
      end
      if count >= capacity then
        status = 0
      end
    end
  end
  if status == 1 then
    if redis.call('PUBLISH', channel, element) == 0 then
      if type(redis.pcall('RPUSH', backlog, element)) == 'table' then
        status = -1
      else
        redis.call('PEXPIRE', backlog, ttl)
      end
    end
    if status == 1 then
      redis.call('HSET', counter, field, count + 1)
      redis.call('PEXPIRE', counter, ttl)
    end
  end
  sent[i] = status
end
return sent
""",
)

#: Takes up to ARGV[1] elements from the head of KEYS[1] without blocking:
#: with BLPOP, the receive loop's batch read on Redis older than 7.0, which
#: has no BLMPOP.
DRAIN = Script(
    "drain",
    """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items > 0 then
  redis.call('LTRIM', KEYS[1], #items, -1)
end
return items
""",
)
