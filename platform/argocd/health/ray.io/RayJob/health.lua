-- Argo CD health of a KubeRay (v1.7) RayJob, from status.jobDeploymentStatus (the RayJob's lifecycle:
-- cluster, submission, retries) and status.jobStatus (the Ray job itself).
-- Runs in Argo CD's gopher-lua sandbox (base, table, os only: no string library).
local hs = {}

if obj.status == nil then
  if obj.spec ~= nil and obj.spec.suspend == true then
    hs.status = "Suspended"
    hs.message = "RayJob is suspended"
  else
    hs.status = "Progressing"
    hs.message = "Waiting for the RayJob controller to report status"
  end
  return hs
end

local deployment = obj.status.jobDeploymentStatus or ""
local job = obj.status.jobStatus or ""
local function detail()
  local parts = "jobDeploymentStatus " .. deployment
  if job ~= "" then
    parts = parts .. ", jobStatus " .. job
  end
  if obj.status.reason ~= nil and obj.status.reason ~= "" then
    parts = parts .. " (" .. obj.status.reason .. ")"
  end
  if obj.status.message ~= nil and obj.status.message ~= "" then
    parts = parts .. ": " .. obj.status.message
  end
  return parts
end

if deployment == "Complete" then
  -- Complete is terminal; only a job that succeeded is a healthy end.
  if job == "SUCCEEDED" then
    hs.status = "Healthy"
  else
    hs.status = "Degraded"
  end
elseif deployment == "Failed" or deployment == "ValidationFailed" then
  hs.status = "Degraded"
elseif deployment == "Suspended" then
  hs.status = "Suspended"
else
  -- "" (new), Initializing, Running, Retrying, Waiting, Suspending: on its way somewhere.
  hs.status = "Progressing"
end
hs.message = detail()
return hs
