-- Argo CD health of a KubeRay (v1.7) RayService, from its status conditions and Serve status.
-- Runs in Argo CD's gopher-lua sandbox (base, table, os only: no string library).
-- Ready=True alone is not enough: it means "serve endpoints > 0", while an application can
-- still have failed (DEPLOY_FAILED/UNHEALTHY) or be deploying a new config.
local hs = {}

local function condition(name)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == name then
      return c
    end
  end
  return nil
end

local function text(c)
  if c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return c.reason or ""
end

-- The first application (of the active or pending cluster) that failed, or that is not yet running.
local function applications(serviceStatus, which)
  local failed, pending = nil, nil
  if serviceStatus == nil or serviceStatus.applicationStatuses == nil then
    return nil, nil
  end
  for name, app in pairs(serviceStatus.applicationStatuses) do
    local line = which .. " application " .. name .. " is " .. (app.status or "unknown")
    if app.message ~= nil and app.message ~= "" then
      line = line .. ": " .. app.message
    end
    if app.status == "DEPLOY_FAILED" or app.status == "UNHEALTHY" then
      failed = failed or line
    elseif app.status ~= "RUNNING" then
      pending = pending or line
    end
  end
  return failed, pending
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the RayService controller to report status"
  return hs
end

local suspended = condition("Suspended")
if suspended ~= nil and suspended.status == "True" then
  hs.status = "Suspended"
  hs.message = text(suspended)
  return hs
end
local suspending = condition("Suspending")
if suspending ~= nil and suspending.status == "True" then
  hs.status = "Progressing"
  hs.message = text(suspending)
  return hs
end

local ready = condition("Ready")
if ready ~= nil and ready.status == "False" then
  if ready.reason == "ValidationFailed" or ready.reason == "InitializingTimeout" or ready.reason == "ZeroServeEndpoints" then
    hs.status = "Degraded"
    hs.message = ready.reason .. ": " .. (ready.message or "")
    return hs
  end
end

local activeFailed, activePending = applications(obj.status.activeServiceStatus, "active")
local pendingFailed, pendingPending = applications(obj.status.pendingServiceStatus, "pending")
if activeFailed ~= nil or pendingFailed ~= nil then
  hs.status = "Degraded"
  hs.message = activeFailed or pendingFailed
  return hs
end

local upgrade = condition("UpgradeInProgress")
if upgrade ~= nil and upgrade.status == "True" then
  hs.status = "Progressing"
  hs.message = "Upgrade in progress: " .. text(upgrade)
  return hs
end
local rollback = condition("RollbackInProgress")
if rollback ~= nil and rollback.status == "True" then
  hs.status = "Progressing"
  hs.message = "Rollback in progress: " .. text(rollback)
  return hs
end

if ready ~= nil and ready.status == "True" then
  if activePending ~= nil or pendingPending ~= nil then
    hs.status = "Progressing"
    hs.message = activePending or pendingPending
    return hs
  end
  hs.status = "Healthy"
  hs.message = text(ready)
  return hs
end

hs.status = "Progressing"
if ready ~= nil then
  hs.message = text(ready)
else
  hs.message = "Waiting for the Ready condition"
end
return hs
