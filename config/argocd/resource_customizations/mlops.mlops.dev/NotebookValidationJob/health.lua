-- Health of a NotebookValidationJob (mlops.mlops.dev/v1alpha1).
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

local function withOperatorMessage(base, status)
  local message = text(status.message)
  if message ~= nil then
    return base .. " - " .. message
  end
  return base
end

local status = obj.status
if type(status) ~= "table" or text(status.phase) == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator"
  return hs
end

local phase = status.phase
local build = status.buildStatus
if type(build) ~= "table" then
  build = {}
end
local pod = text(status.validationPodName)

if phase == "Succeeded" then
  hs.status = "Healthy"
  local completed = text(status.completionTime)
  if completed ~= nil then
    hs.message = "Notebook validation succeeded at " .. completed
  else
    hs.message = "Notebook validation succeeded"
  end
  return hs
end

if phase == "Failed" then
  hs.status = "Degraded"
  local reason = text(status.message)
  -- Older operators leave status.message empty and explain the failure in a False condition.
  if reason == nil and type(status.conditions) == "table" then
    for _, condition in ipairs(status.conditions) do
      if type(condition) == "table" and condition.status == "False" and text(condition.message) ~= nil then
        reason = condition.message
        break
      end
    end
  end
  if reason == nil then
    reason = "Notebook validation failed"
  end
  local retries = tonumber(status.retryCount)
  if retries == nil then
    retries = 0
  end
  hs.message = "Failed: " .. reason .. " (retries: " .. tostring(retries) .. ")"
  return hs
end

local step = nil
if phase == "Initializing" then
  step = "preparing the validation job"
elseif phase == "Building" then
  step = "building the notebook image"
  if text(build.buildName) ~= nil then
    step = step .. " " .. build.buildName
  end
  if text(build.phase) ~= nil then
    step = step .. " (build " .. build.phase .. ")"
  end
elseif phase == "BuildComplete" then
  step = "image built"
  if text(build.imageReference) ~= nil then
    step = step .. " " .. build.imageReference
  end
  step = step .. ", starting the validation"
elseif phase == "Pending" then
  step = "waiting for the validation pod"
  if pod ~= nil then
    step = step .. " " .. pod
  end
elseif phase == "Running" or phase == "ValidationRunning" then
  step = "running the notebook"
  if pod ~= nil then
    step = step .. " in pod " .. pod
  end
end

if step ~= nil then
  hs.status = "Progressing"
  hs.message = withOperatorMessage(phase .. ": " .. step, status)
  return hs
end

hs.status = "Unknown"
hs.message = "Unknown phase: " .. phase
return hs
