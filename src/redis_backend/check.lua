-- ratecore: one check of one or more limits, decided and charged atomically.
-- See src/redis_backend.rs for the protocol; the client builds every argument.
--
-- Redis Lua numbers are doubles (exact integers only up to 2^53), so every 64-bit
-- quantity travels and is computed as two exact 32-bit halves (hi, lo), and the one
-- 128-bit comparison (approximate window) uses 16-bit limbs. Every division the
-- algorithms need depends on `now` only and is done by the client; the only division
-- here is by 10^6 (nanoseconds to milliseconds for the TTL), done exactly.
--
-- KEYS[i]  state of limit i (a string: big-endian fields, layouts below)
-- ARGV[1]  "1": charge the request if every limit admits it; "0": only look
-- ARGV[2]  minimum TTL in ms
-- ARGV[3], ARGV[4]  now (hi, lo), nanoseconds
-- then one block per limit, starting with its algorithm code:
--   1 GCRA      inc(2) max_base(2)                           state: tat(8)
--   2 fixed     start(2) room(2) cost(2) period(2)            state: start(8) count(8)
--   3 approx    start(2) period(2) weight(2) budget(4) cost(2) state: start(8) prev(8) cur(8)
--   4 strict    slots idx sub_start(2) period(2) limit cost   state: slots x (newest(8) count(4))
-- (n) = n numbers, 32-bit halves from the most significant.
--
-- Reply: { 1 if every limit admits else 0, then per limit: old state (string, "" if
-- none), new state written ("" if none; strict: index(4) .. slot(12)), TTL set in ms (0
-- if none) }.

local B16 = 65536
local B32 = 4294967296
-- ceil(2^64 ns / 10^6): the longest a state can stay active, in ms.
local MAX_TTL = 18446744073710

local charge = ARGV[1] == '1'
local min_ttl = tonumber(ARGV[2])
local nh, nl = tonumber(ARGV[3]), tonumber(ARGV[4])
local argi = 5

local function num()
  local v = tonumber(ARGV[argi])
  if v == nil then
    error('ratecore: malformed argument ' .. argi)
  end
  argi = argi + 1
  return v
end

local function u32(s, p)
  local a, b, c, d = string.byte(s, p, p + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end

local function be32(v)
  local a = math.floor(v / 16777216)
  local r = v - a * 16777216
  local b = math.floor(r / 65536)
  r = r - b * 65536
  local c = math.floor(r / 256)
  return string.char(a, b, c, r - c * 256)
end

local function be64(h, l)
  return be32(h) .. be32(l)
end

local function lt(ah, al, bh, bl)
  return ah < bh or (ah == bh and al < bl)
end

local function le(ah, al, bh, bl)
  return ah < bh or (ah == bh and al <= bl)
end

-- a + b: hi, lo, and whether it overflowed 64 bits.
local function add(ah, al, bh, bl)
  local l = al + bl
  local carry = 0
  if l >= B32 then
    l = l - B32
    carry = 1
  end
  local h = ah + bh + carry
  if h >= B32 then
    return h - B32, l, true
  end
  return h, l, false
end

-- a - b for a >= b.
local function sub(ah, al, bh, bl)
  local l = al - bl
  local borrow = 0
  if l < 0 then
    l = l + B32
    borrow = 1
  end
  return ah - bh - borrow, l
end

-- ceil((h * 2^32 + l) / 10^6), exactly.
local function ceil_ms(h, l)
  local qh = math.floor(h / 1000000)
  local x = (h - qh * 1000000) * B32 + l -- < 10^6 * 2^32 + 2^32 < 2^53
  local ql = math.floor(x / 1000000)
  local r = x - ql * 1000000
  -- The quotient of two exact doubles is rounded; correct it.
  if r < 0 then
    ql = ql - 1
    r = r + 1000000
  elseif r >= 1000000 then
    ql = ql + 1
    r = r - 1000000
  end
  local ms = qh * B32 + ql -- qh < 4295: exact
  if r > 0 then
    ms = ms + 1
  end
  return ms
end

-- TTL in ms from now until the state is at rest at moment `rest` (over: beyond 2^64).
local function ttl_until(rh, rl, over)
  local ms
  if over then
    ms = MAX_TTL
  elseif le(rh, rl, nh, nl) then
    ms = 0
  else
    ms = ceil_ms(sub(rh, rl, nh, nl))
  end
  if ms < min_ttl then
    ms = min_ttl
  end
  if ms < 1 then
    ms = 1
  end
  return ms
end

local function limbs(h, l)
  local l0 = l % B16
  local h0 = h % B16
  return { l0, (l - l0) / B16, h0, (h - h0) / B16 }
end

-- acc += a * b, column by column (columns stay below 2^36: exact).
local function mul_acc(acc, a, b)
  for i = 1, 4 do
    local ai = a[i]
    if ai ~= 0 then
      for j = 1, 4 do
        acc[i + j - 1] = acc[i + j - 1] + ai * b[j]
      end
    end
  end
end

local function normalise(acc)
  local carry = 0
  for k = 1, 9 do
    local v = acc[k] + carry
    local lo = v % B16
    acc[k] = lo
    carry = (v - lo) / B16
  end
end

local function le128(a, b)
  for k = 9, 1, -1 do
    if a[k] ~= b[k] then
      return a[k] < b[k]
    end
  end
  return true
end

local function bad_state(key)
  return redis.error_reply('ratecore: key ' .. key .. ' holds a value of another layout')
end

local plans = {}
local olds = {}
local all = true

for i = 1, #KEYS do
  local key = KEYS[i]
  local code = num()
  local raw = redis.call('GET', key)
  if not raw then
    raw = ''
  end
  olds[i] = raw
  local admit
  local plan = nil

  if code == 1 then
    local ih, il, mh, ml = num(), num(), num(), num()
    local th, tl = 0, 0
    if #raw == 8 then
      th, tl = u32(raw, 1), u32(raw, 5)
    elseif #raw ~= 0 then
      return bad_state(key)
    end
    -- base = max(tat, now); admitted iff base <= max_base (which folds in both the
    -- tolerance and the u64 overflow bound); new tat = base + inc.
    local bh, bl = th, tl
    if lt(th, tl, nh, nl) then
      bh, bl = nh, nl
    end
    admit = le(bh, bl, mh, ml)
    if admit then
      local h, l = add(bh, bl, ih, il)
      plan = { 'SET', be64(h, l), ttl_until(h, l, false) }
    end

  elseif code == 2 then
    local wh, wl, rh, rl = num(), num(), num(), num()
    local ch, cl, ph, pl = num(), num(), num(), num()
    local sh, sl, uh, ul = 0, 0, 0, 0
    if #raw == 16 then
      sh, sl, uh, ul = u32(raw, 1), u32(raw, 5), u32(raw, 9), u32(raw, 13)
    elseif #raw ~= 0 then
      return bad_state(key)
    end
    -- A later window starts empty; the same or an earlier one (time went backwards)
    -- keeps the stored window and count.
    if lt(sh, sl, wh, wl) then
      sh, sl, uh, ul = wh, wl, 0, 0
    end
    admit = le(uh, ul, rh, rl)
    if admit then
      local kh, kl = add(uh, ul, ch, cl)
      local eh, el, over = add(sh, sl, ph, pl)
      plan = { 'SET', be64(sh, sl) .. be64(kh, kl), ttl_until(eh, el, over) }
    end

  elseif code == 3 then
    local wh, wl, ph, pl = num(), num(), num(), num()
    local gh, gl = num(), num()
    local b3, b2, b1, b0 = num(), num(), num(), num()
    local ch, cl = num(), num()
    local sh, sl, qh, ql, xh, xl = 0, 0, 0, 0, 0, 0
    if #raw == 24 then
      sh, sl, qh, ql = u32(raw, 1), u32(raw, 5), u32(raw, 9), u32(raw, 13)
      xh, xl = u32(raw, 17), u32(raw, 21)
    elseif #raw ~= 0 then
      return bad_state(key)
    end
    local weight_h, weight_l = gh, gl
    if lt(sh, sl, wh, wl) then
      -- Moved on: one window shifts current into previous, two or more clear both.
      local eh, el = add(sh, sl, ph, pl) -- <= now's window start: no overflow
      if eh == wh and el == wl then
        qh, ql, xh, xl = xh, xl, 0, 0
      else
        qh, ql, xh, xl = 0, 0, 0, 0
      end
      sh, sl = wh, wl
    elseif lt(wh, wl, sh, sl) then
      -- Time went backwards: now is clamped to the stored window's start.
      weight_h, weight_l = ph, pl
    end
    -- Admitted iff previous * weight + current * period <= (limit - cost) * period.
    local acc = { 0, 0, 0, 0, 0, 0, 0, 0, 0 }
    local period = limbs(ph, pl)
    mul_acc(acc, limbs(qh, ql), limbs(weight_h, weight_l))
    mul_acc(acc, limbs(xh, xl), period)
    normalise(acc)
    local budget = { 0, 0, 0, 0, 0, 0, 0, 0, 0 }
    local words = { b0, b1, b2, b3 }
    for k = 1, 4 do
      local lo = words[k] % B16
      budget[2 * k - 1] = lo
      budget[2 * k] = (words[k] - lo) / B16
    end
    admit = le128(acc, budget)
    if admit then
      local kh, kl = add(xh, xl, ch, cl)
      local eh, el, over = add(sh, sl, ph, pl)
      local fh, fl, over2 = add(eh, el, ph, pl)
      plan = {
        'SET',
        be64(sh, sl) .. be64(qh, ql) .. be64(kh, kl),
        ttl_until(fh, fl, over or over2),
      }
    end

  elseif code == 4 then
    local slots, idx = num(), num()
    local sh, sl, ph, pl = num(), num(), num(), num()
    local limit, cost = num(), num()
    local n = #raw / 12
    if n ~= math.floor(n) or n > slots then
      return bad_state(key)
    end
    local newest_h, newest_l, counts = {}, {}, {}
    -- Effective time: the newest admission recorded, or now if later.
    local eh, el, eidx, from_slot = nh, nl, idx, false
    for s = 0, n - 1 do
      local p = s * 12 + 1
      local c = u32(raw, p + 8)
      newest_h[s], newest_l[s], counts[s] = u32(raw, p), u32(raw, p + 4), c
      if c > 0 and lt(eh, el, newest_h[s], newest_l[s]) then
        eh, el, eidx, from_slot = newest_h[s], newest_l[s], s, true
      end
    end
    -- Counts still in the window: released at newest + period (never, past 2^64).
    local sum = 0
    for s = 0, n - 1 do
      local c = counts[s]
      if c > 0 then
        local rh, rl, over = add(newest_h[s], newest_l[s], ph, pl)
        if over or lt(eh, el, rh, rl) then
          sum = sum + c -- at most 4097 * (2^32 - 1): exact
        end
      end
    end
    admit = sum + cost <= limit
    if admit then
      -- Charge the effective time's sub-window: the newest slot itself when the
      -- effective time is its admission, else now's slot, added to only if that slot
      -- holds now's sub-window (its newest lies at or after the sub-window's start).
      local kept = 0
      local c = counts[eidx] or 0
      if from_slot then
        kept = c
      elseif c > 0 and le(sh, sl, newest_h[eidx], newest_l[eidx]) then
        kept = c
      end
      local rh, rl, over = add(eh, el, ph, pl)
      plan = { 'SLOT', eidx, be64(eh, el) .. be32(kept + cost), ttl_until(rh, rl, over) }
    end

  else
    error('ratecore: unknown algorithm code ' .. tostring(code))
  end

  plans[i] = plan
  if not admit then
    all = false
  end
end

local reply = { all and 1 or 0 }
local apply = all and charge
for i = 1, #KEYS do
  local plan = plans[i]
  local new, ttl = '', 0
  if apply and plan then
    if plan[1] == 'SET' then
      new, ttl = plan[2], plan[3]
      redis.call('SET', KEYS[i], new, 'PX', string.format('%.0f', ttl))
    else
      ttl = plan[4]
      redis.call('SETRANGE', KEYS[i], plan[2] * 12, plan[3])
      redis.call('PEXPIRE', KEYS[i], string.format('%.0f', ttl))
      new = be32(plan[2]) .. plan[3]
    end
  end
  reply[#reply + 1] = olds[i]
  reply[#reply + 1] = new
  reply[#reply + 1] = ttl
end
return reply
