-- Argo CD health of a KubeRay (v1.7) RayJob, from status.jobDeploymentStatus (the RayJob's lifecycle:
-- cluster, submission, retries) and status.jobStatus (the Ray job itself).
-- Runs in Argo CD's gopher-lua sandbox (base, table, os only: no string library).
local hs = {}

-- A template (apps/guessme-train/k8s/rayjob.yaml): Git declares it suspended (spec.suspend) and says so
-- (annotation guessme.dev/template "true"); each training run is a copy of it, without the annotation.
-- Argo CD gives an Application the health of its worst resource (gitops-engine pkg/health/health.go
-- healthOrder: Healthy < Suspended < Progressing < ...; controller/health.go setApplicationHealth), so a
-- template reported Suspended would keep the environment's Application from ever being Healthy. A
-- RayJob suspended without that declaration (paused by hand, or queued) stays Suspended.
local TEMPLATE_MESSAGE = "suspended template (guessme.dev/template): training runs are copies of it"
local function isTemplate()
  local annotations = obj.metadata ~= nil and obj.metadata.annotations or nil
  return obj.spec ~= nil and obj.spec.suspend == true and annotations ~= nil
    and annotations["guessme.dev/template"] == "true"
end

if obj.status == nil then
  if isTemplate() then
    hs.status = "Healthy"
    hs.message = TEMPLATE_MESSAGE
  elseif obj.spec ~= nil and obj.spec.suspend == true then
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
elseif deployment == "Suspended" and isTemplate() then
  hs.status = "Healthy"
  hs.message = TEMPLATE_MESSAGE .. "; " .. detail()
  return hs
elseif deployment == "Suspended" then
  hs.status = "Suspended"
else
  -- "" (new), Initializing, Running, Retrying, Waiting, Suspending: on its way somewhere.
  hs.status = "Progressing"
end
hs.message = detail()
return hs
