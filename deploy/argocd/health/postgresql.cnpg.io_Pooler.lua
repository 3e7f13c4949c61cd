-- Argo CD health of a CloudNativePG Pooler (Argo CD has none built in for this kind): healthy
-- once as many PgBouncer instances run as asked for (spec.instances, default 1), as the
-- Flux expression in deploy/flux/kustomization.yaml says.
local health = {}
local wanted = 1
if obj.spec ~= nil and obj.spec.instances ~= nil then
  wanted = obj.spec.instances
end
if obj.status == nil or obj.status.instances == nil then
  health.status = "Progressing"
  health.message = "Waiting for the operator to report the PgBouncer instances"
elseif obj.status.instances >= wanted then
  health.status = "Healthy"
  health.message = obj.status.instances .. " of " .. wanted .. " PgBouncer instances running"
else
  health.status = "Progressing"
  health.message = obj.status.instances .. " of " .. wanted .. " PgBouncer instances running"
end
return health
