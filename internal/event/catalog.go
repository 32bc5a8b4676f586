// Package event holds the catalog of event types (CONTRACT §6), the envelope
// every consumer receives, and publishing inside the caller's transaction.
package event

// Task events.
const (
	CanaryStarted    = "canary_started"
	CanaryCompleted  = "canary_completed"
	FullCompleted    = "full_completed"
	ReleaseStarted   = "release_started"
	ReleaseFailed    = "release_failed"
	ReleaseCancelled = "release_cancelled"
	RollbackStarted  = "rollback_started"
)

// Release plan events.
const (
	PlanFinishPlanning    = "plan_finish_planning"
	PlanStartExecute      = "plan_start_execute"
	PlanAllJobDone        = "plan_all_job_done"
	PlanApprovalRequested = "plan_approval_requested"
	PlanApproved          = "plan_approved"
	PlanDenied            = "plan_denied"
	PlanTimeout           = "plan_timeout"
	PlanCancelled         = "plan_cancelled"
	PlanSuccess           = "plan_success"
)

// Object events.
const (
	ProjectCreated     = "project_created"
	ProjectUpdated     = "project_updated"
	ProjectDeleted     = "project_deleted"
	EnvironmentCreated = "environment_created"
	EnvironmentUpdated = "environment_updated"
	EnvironmentDeleted = "environment_deleted"
	VersionCreated     = "version_created"
	HostCreated        = "host_created"
	HostDeleted        = "host_deleted"
)

// Object kinds carried in the envelope.
const (
	KindReleaseTask = "release_task"
	KindReleasePlan = "release_plan"
	KindProject     = "project"
	KindEnvironment = "environment"
	KindVersion     = "version"
	KindHost        = "host"
)

// Info describes one event type of the catalog.
type Info struct {
	Type       string
	ObjectKind string
	// Action is the envelope's action: the event type for task and plan
	// events, create/update/delete for object events.
	Action string
}

var catalog = []Info{
	{CanaryStarted, KindReleaseTask, CanaryStarted},
	{CanaryCompleted, KindReleaseTask, CanaryCompleted},
	{FullCompleted, KindReleaseTask, FullCompleted},
	{ReleaseStarted, KindReleaseTask, ReleaseStarted},
	{ReleaseFailed, KindReleaseTask, ReleaseFailed},
	{ReleaseCancelled, KindReleaseTask, ReleaseCancelled},
	{RollbackStarted, KindReleaseTask, RollbackStarted},
	{PlanFinishPlanning, KindReleasePlan, PlanFinishPlanning},
	{PlanStartExecute, KindReleasePlan, PlanStartExecute},
	{PlanAllJobDone, KindReleasePlan, PlanAllJobDone},
	{PlanApprovalRequested, KindReleasePlan, PlanApprovalRequested},
	{PlanApproved, KindReleasePlan, PlanApproved},
	{PlanDenied, KindReleasePlan, PlanDenied},
	{PlanTimeout, KindReleasePlan, PlanTimeout},
	{PlanCancelled, KindReleasePlan, PlanCancelled},
	{PlanSuccess, KindReleasePlan, PlanSuccess},
	{ProjectCreated, KindProject, "create"},
	{ProjectUpdated, KindProject, "update"},
	{ProjectDeleted, KindProject, "delete"},
	{EnvironmentCreated, KindEnvironment, "create"},
	{EnvironmentUpdated, KindEnvironment, "update"},
	{EnvironmentDeleted, KindEnvironment, "delete"},
	{VersionCreated, KindVersion, "create"},
	{HostCreated, KindHost, "create"},
	{HostDeleted, KindHost, "delete"},
}

var byType = func() map[string]Info {
	m := make(map[string]Info, len(catalog))
	for _, i := range catalog {
		m[i.Type] = i
	}
	return m
}()

// Lookup returns the catalog entry of an event type.
func Lookup(eventType string) (Info, bool) {
	i, ok := byType[eventType]
	return i, ok
}

// Types lists every event type in catalog order.
func Types() []string {
	out := make([]string, len(catalog))
	for n, i := range catalog {
		out[n] = i.Type
	}
	return out
}
