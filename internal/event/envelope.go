package event

import (
	"encoding/json"
	"time"
)

// Envelope is the standard message of CONTRACT §6: the body of a custom
// callback and the input every channel renders from. It is stored once per
// event and never changes, so every retry carries the same id and content.
type Envelope struct {
	ID          string          `json:"id"`
	Sequence    int64           `json:"sequence"`
	EventType   string          `json:"event_type"`
	ObjectKind  string          `json:"object_kind"`
	Action      string          `json:"action"`
	Project     *ProjectRef     `json:"project,omitempty"`
	Version     *VersionRef     `json:"version,omitempty"`
	Task        *TaskRef        `json:"task,omitempty"`
	Deployment  *Deployment     `json:"deployment,omitempty"`
	ReleasePlan json.RawMessage `json:"release_plan,omitempty"`
	Object      json.RawMessage `json:"object,omitempty"`
	Timestamp   time.Time       `json:"timestamp"`
	Duration    string          `json:"duration,omitempty"`
	Environment string          `json:"environment,omitempty"`
	Actor       *Actor          `json:"actor,omitempty"`
	URL         string          `json:"url,omitempty"`
}

// ProjectRef identifies the project an event belongs to.
type ProjectRef struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

// VersionRef identifies the version a task releases.
type VersionRef struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

// TaskRef is the task as it stood when the event happened.
type TaskRef struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Strategy string `json:"strategy"`
	Status   string `json:"status"`
	Phase    string `json:"phase,omitempty"`
}

// Deployment carries the host counts at the moment of the event.
type Deployment struct {
	TotalCount     int      `json:"total_count"`
	CanaryCount    int      `json:"canary_count"`
	CompletedCount int      `json:"completed_count"`
	FailedCount    int      `json:"failed_count"`
	Hosts          []string `json:"hosts"`
}

// Actor is who caused the event; the system itself for scheduled moves.
type Actor struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// PlanRef is the subset of a release plan that channels render; the full
// plan object is in Envelope.ReleasePlan.
type PlanRef struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Manager   string `json:"manager,omitempty"`
	ManagerID string `json:"manager_id,omitempty"`
}

// Plan decodes the plan summary of a plan event; ok is false for other events.
func (e *Envelope) Plan() (PlanRef, bool) {
	var p PlanRef
	if len(e.ReleasePlan) == 0 || json.Unmarshal(e.ReleasePlan, &p) != nil {
		return p, false
	}
	return p, true
}
