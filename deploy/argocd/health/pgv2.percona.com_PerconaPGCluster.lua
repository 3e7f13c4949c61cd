-- Argo CD health of a PerconaPGCluster (Argo CD has none built in for this kind).
-- States are the PG operator's AppState values: initializing, paused, stopping, ready.
local health = {}
if obj.status == nil or obj.status.state == nil then
  health.status = "Progressing"
  health.message = "Waiting for the operator to report the cluster's state"
  return health
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  health.status = "Progressing"
  health.message = "The operator has not yet acted on the latest change"
  return health
end
local state = obj.status.state
if state == "ready" then
  health.status = "Healthy"
  health.message = "Cluster is ready"
elseif state == "paused" then
  health.status = "Suspended"
  health.message = "Cluster is paused"
elseif state == "initializing" or state == "stopping" then
  health.status = "Progressing"
  health.message = "Cluster is " .. state
else
  health.status = "Degraded"
  health.message = "Cluster is in state " .. tostring(state)
end
return health
