-- Runs an Argo CD resource health script the way Argo CD does, without Argo CD.
--
--   lua5.1 run_health_tests.lua HEALTH_LUA CASES_LUA
--
-- CASES_LUA is data only: `return { { name = "...", obj = {...}, expected = { status = "...", message = "..." } }, ... }`
-- (YAML testdata converted to a Lua table literal by the caller, since Lua has no YAML parser).
-- For each case the script runs in a fresh sandbox holding only what gopher-lua opens for Argo CD
-- health scripts by default (base functions and `table`; no string, math, os, io, debug, require or
-- load*), with the global `obj` set to a copy of the case's object, under Argo CD's 1 s timeout.
-- Prints one JSON line per case: {"name","ok","status","message","error"}.
-- Exit status: 0 all cases matched, 1 some case failed or mismatched, 2 bad usage or unreadable input.

local TIMEOUT_SECONDS = 1
local VALID_STATUSES = { Healthy = true, Progressing = true, Degraded = true, Suspended = true, Missing = true, Unknown = true }
-- Base functions gopher-lua's OpenBase gives a script, minus those that reach outside the sandbox
-- (load, loadstring, loadfile, dofile, require, module, getfenv, setfenv, collectgarbage).
local BASE_FUNCTIONS = {
  "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "print", "rawequal", "rawget",
  "rawset", "select", "setmetatable", "tonumber", "tostring", "type", "unpack", "xpcall",
}

local function jsonString(value)
  local escaped = string.gsub(value, '[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    if c == "\n" then return "\\n" end
    if c == "\t" then return "\\t" end
    if c == "\r" then return "\\r" end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. escaped .. '"'
end

local function jsonField(name, value)
  if value == nil then return jsonString(name) .. ":null" end
  if type(value) == "boolean" then return jsonString(name) .. ":" .. tostring(value) end
  return jsonString(name) .. ":" .. jsonString(tostring(value))
end

local function deepCopy(value, seen)
  if type(value) ~= "table" then return value end
  seen = seen or {}
  if seen[value] then return seen[value] end
  local copy = {}
  seen[value] = copy
  for k, v in pairs(value) do copy[deepCopy(k, seen)] = deepCopy(v, seen) end
  return copy
end

local function newSandbox(obj)
  local env = {}
  for _, name in ipairs(BASE_FUNCTIONS) do env[name] = _G[name] end
  env._VERSION = _VERSION
  env.table = deepCopy(table)
  env._G = env
  env.obj = deepCopy(obj)
  return env
end

-- Runs chunk in the sandbox. Strings lose their metatable for the duration, because in gopher-lua
-- without the string library ("x"):format() fails just like string.format does.
local function runSandboxed(chunk, obj)
  setfenv(chunk, newSandbox(obj))
  local stringMeta = getmetatable("")
  debug.setmetatable("", nil)
  local started = os.clock()
  debug.sethook(function()
    if os.clock() - started > TIMEOUT_SECONDS then
      error("timeout: health script ran longer than " .. TIMEOUT_SECONDS .. " s", 2)
    end
  end, "", 1000)
  local ok, result = pcall(chunk)
  debug.sethook()
  debug.setmetatable("", stringMeta)
  return ok, result
end

-- Mirrors Argo CD's checks on the returned table: a known status code and string fields only.
local function toHealth(ok, result)
  if not ok then return nil, "script error: " .. tostring(result) end
  if type(result) ~= "table" then return nil, "script returned " .. type(result) .. ", not a table" end
  if type(result.status) ~= "string" or not VALID_STATUSES[result.status] then
    return nil, "invalid health status: " .. tostring(result.status)
  end
  if result.message ~= nil and type(result.message) ~= "string" then
    return nil, "message is " .. type(result.message) .. ", not a string"
  end
  return { status = result.status, message = result.message or "" }, nil
end

local healthPath, casesPath = arg[1], arg[2]
if healthPath == nil or casesPath == nil then
  io.stderr:write("usage: lua5.1 run_health_tests.lua HEALTH_LUA CASES_LUA\n")
  os.exit(2)
end

local casesChunk, casesErr = loadfile(casesPath)
if casesChunk == nil then
  io.stderr:write("cannot load cases: " .. tostring(casesErr) .. "\n")
  os.exit(2)
end
setfenv(casesChunk, {})
local cases = casesChunk()
if type(cases) ~= "table" then
  io.stderr:write("cases file must return a table\n")
  os.exit(2)
end

local failures = 0
for index, case in ipairs(cases) do
  local name = case.name or ("case " .. index)
  -- Load the script afresh per case so no state leaks between cases.
  local chunk, loadErr = loadfile(healthPath)
  local health, err
  if chunk == nil then
    err = "cannot load script: " .. tostring(loadErr)
  else
    health, err = toHealth(runSandboxed(chunk, case.obj))
  end
  local ok = err == nil
  if ok and case.expected ~= nil then
    ok = health.status == case.expected.status and health.message == (case.expected.message or "")
  end
  if not ok then failures = failures + 1 end
  io.write("{", jsonField("name", name), ",", jsonField("ok", ok), ",",
    jsonField("status", health and health.status), ",", jsonField("message", health and health.message), ",",
    jsonField("error", err), "}\n")
end

os.exit(failures == 0 and 0 or 1)
