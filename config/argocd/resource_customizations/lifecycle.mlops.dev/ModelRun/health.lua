-- Health of a ModelRun (lifecycle.mlops.dev/v1alpha1), the record of one training run.
-- Argo CD runs this in gopher-lua (Lua 5.1) without the string/math/os libraries, so only base
-- functions, `..` on values known to be strings, and tostring are used.
local hs = {}

-- A field is usable text only when it is a non-empty string; anything else counts as absent.
local function text(value)
  if type(value) == "string" and value ~= "" then
    return value
  end
  return nil
end

local status = obj.status
if type(status) ~= "table" or text(status.phase) == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the run to start"
  return hs
end

local phase = status.phase

if phase == "Succeeded" then
  hs.status = "Healthy"
  local promoted = nil
  if type(status.release) == "table" then
    promoted = text(status.release.promoted)
  end
  if promoted ~= nil then
    hs.message = "Serving release " .. promoted
  else
    hs.message = "Succeeded"
  end
  return hs
end

if phase == "Rejected" then
  hs.status = "Degraded"
  local failed = nil
  if type(status.gate) == "table" and type(status.gate.checks) == "table" then
    for _, check in ipairs(status.gate.checks) do
      if type(check) == "table" and check.ok == false then
        local name = text(check.name)
        if name == nil then
          name = "unnamed check"
        end
        if failed == nil then
          failed = name
        else
          failed = failed .. ", " .. name
        end
      end
    end
  end
  if failed ~= nil then
    hs.message = "Rejected: failed checks " .. failed
  elseif text(status.message) ~= nil then
    hs.message = "Rejected: " .. status.message
  else
    hs.message = "Rejected by the health gate"
  end
  return hs
end

if phase == "Failed" or phase == "RolledBack" then
  hs.status = "Degraded"
  if text(status.message) ~= nil then
    hs.message = phase .. ": " .. status.message
  else
    hs.message = phase
  end
  return hs
end

if phase == "Pending" or phase == "Training" or phase == "Copying" or phase == "Gating"
    or phase == "Promoting" or phase == "Verifying" then
  hs.status = "Progressing"
  local step = text(status.step)
  if step == nil then
    step = phase
  end
  hs.message = phase .. ": " .. step
  return hs
end

hs.status = "Unknown"
hs.message = "Unknown phase: " .. phase
return hs
