-- wrk script of bench/bench_pages.py (see its docstring). Arguments after "--": MODE THREADS [FILE [START]]
--
--   plain    every request is wrk's own: the URL's path with the -H headers (a static request)
--   bodies   POST to the URL's path; each request sends the next line of FILE as its form body, once:
--            the lines after the first START are dealt out between the THREADS threads (pre-signed
--            client assertions, each with its own jti, for the token endpoint). Should a thread run
--            out, it starts over and counts the reuse, and the benchmark reports the run as invalid.
--   mixed    each request is drawn from the weighted list FILE returns (a Lua file:
--            { {weight=, method=, path=, headers={}, body=, vary=}, ... }); in a body with vary set,
--            "NAMEHERE" becomes a name no other request uses (a new patient each time), also across
--            runs with different START numbers.
--
-- Every mode counts the answers by status code. done() prints one line, "WRK_RESULT {json}", with
-- the totals, latency percentiles in microseconds, the socket errors, the answers by status and, for
-- "bodies", the most lines one thread took (so that a run stopped early can be followed by another
-- that skips them).

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

local function count(status)
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
end

local function letters(n)
   -- 0 -> "a", 25 -> "z", 26 -> "ba": names of letters only, as a person's would be
   local out = ""
   repeat
      out = string.char(97 + n % 26) .. out
      n = math.floor(n / 26)
   until n == 0
   return out
end

function init(args)
   mode = args[1] or "plain"
   local nthreads = tonumber(args[2]) or 1
   statuses = {}
   reused = 0
   if mode == "plain" then
      request = nil -- wrk builds the request once and sends it as is
   elseif mode == "bodies" then
      bodies = {}
      local i, skip = 0, tonumber(args[4]) or 0
      for line in io.lines(args[3]) do
         if i >= skip and (i - skip) % nthreads == id then
            bodies[#bodies + 1] = line
         end
         i = i + 1
      end
      position = 0
      body_headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
   elseif mode == "mixed" then
      mix = dofile(args[3])
      prefix = "Load" .. letters(tonumber(args[4]) or 0) .. letters(id) .. "x"
      total_weight = 0
      for _, item in ipairs(mix) do
         total_weight = total_weight + item.weight
      end
      math.randomseed(1000 + id)
      made = 0
   else
      error("unknown mode " .. mode)
   end
end

function request()
   if mode == "bodies" then
      position = position + 1
      if position > #bodies then
         position = 1
         reused = reused + 1
      end
      return wrk.format("POST", nil, body_headers, bodies[position])
   end
   local roll = math.random() * total_weight
   local item = mix[#mix]
   for _, candidate in ipairs(mix) do
      roll = roll - candidate.weight
      if roll < 0 then
         item = candidate
         break
      end
   end
   local body = item.body
   if body and item.vary then
      made = made + 1
      body = body:gsub("NAMEHERE", prefix .. letters(made))
   end
   return wrk.format(item.method, item.path, item.headers, body)
end

function response(status, headers, body)
   count(status)
end

function done(summary, latency, requests)
   local by_status, reuses, taken = {}, 0, 0
   for _, thread in ipairs(threads) do
      for key, n in pairs(thread:get("statuses") or {}) do
         by_status[key] = (by_status[key] or 0) + n
      end
      reuses = reuses + (thread:get("reused") or 0)
      taken = math.max(taken, thread:get("position") or 0)
   end
   local parts = {}
   for key, n in pairs(by_status) do
      parts[#parts + 1] = string.format('"%s": %d', key, n)
   end
   local e = summary.errors
   io.write(string.format(
      'WRK_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "mean": %.1f, "max": %d}, ' ..
      '"statuses": {%s}, "reused": %d, "taken": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max,
      table.concat(parts, ", "), reuses, taken))
end
