package plan

import (
	"encoding/json"
	"time"

	"github.com/herald-release/herald/internal/event"
)

// Plan is a release plan as the API shows it (CONTRACT §7). Times are RFC
// 3339; null when not set.
type Plan struct {
	ID string `json:"id"`
	// Index numbers plans in creation order (the seed's "index").
	Index               int64      `json:"index"`
	Name                string     `json:"name"`
	ManagerID           string     `json:"manager_id"`
	Manager             string     `json:"manager"`
	StartTime           *time.Time `json:"start_time"`
	EndTime             *time.Time `json:"end_time"`
	ScheduleExecuteTime *time.Time `json:"schedule_execute_time"`
	Description         string     `json:"description"`
	JiraSprints         []Sprint   `json:"jira_sprints"`
	Jobs                []Job      `json:"jobs"`
	Approval            Approval   `json:"approval"`
	Status              string     `json:"status"`
	InstanceCode        string     `json:"instance_code"`
	// ExternalCheck is the external check the plan waits for or that failed.
	ExternalCheck *ExternalCheck `json:"external_check,omitempty"`
	PlanningTime  *time.Time     `json:"planning_time"`
	ApprovalTime  *time.Time     `json:"approval_time"`
	ExecutingTime *time.Time     `json:"executing_time"`
	SuccessTime   *time.Time     `json:"success_time"`
	CreatedBy     event.Actor    `json:"created_by"`
	UpdatedBy     event.Actor    `json:"updated_by"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
}

// Sprint is an associated JIRA sprint.
type Sprint struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	Link string `json:"link,omitempty"`
}

// Job is one release item.
type Job struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Type      string `json:"type"`
	ManagerID string `json:"manager_id,omitempty"`
	Status    string `json:"status"`
	// Spec is TextSpec or WorkflowSpec.
	Spec       json.RawMessage `json:"spec"`
	ExecutedBy *event.Actor    `json:"executed_by,omitempty"`
	ExecutedAt *time.Time      `json:"executed_at,omitempty"`
	// Error says why the job failed.
	Error string `json:"error,omitempty"`
}

// TextSpec is a text job's spec.
type TextSpec struct {
	Content string `json:"content"`
	Remark  string `json:"remark"`
}

// WorkflowSpec is a workflow job's spec: the release task body of
// CONTRACT §5, the task that runs it and the task's status.
type WorkflowSpec struct {
	Workflow json.RawMessage `json:"workflow"`
	TaskID   string          `json:"task_id"`
	Status   string          `json:"status"`
}

// Approval is the plan's approval configuration and, once asked for, its
// state in the current round.
type Approval struct {
	Enabled   bool     `json:"enabled"`
	Approvers []string `json:"approvers"`
	Mode      string   `json:"mode"`
	// Status is "" before submit-approval, then pending, approved or denied.
	Status    string     `json:"status,omitempty"`
	Decisions []Decision `json:"decisions"`
}

// Approval statuses.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalDenied   = "denied"
)

// Decision is one approver's answer.
type Decision struct {
	UserID   string    `json:"user_id"`
	UserName string    `json:"user_name"`
	Approve  bool      `json:"approve"`
	Comment  string    `json:"comment"`
	At       time.Time `json:"at"`
}

// ExternalCheck is the state of the plan's external check.
type ExternalCheck struct {
	HookEvent    string     `json:"hook_event"`
	Deadline     *time.Time `json:"deadline,omitempty"`
	FailedReason string     `json:"failed_reason,omitempty"`
}

// LogEntry is one line of the operation record.
type LogEntry struct {
	ID     string      `json:"id"`
	PlanID string      `json:"plan_id"`
	Actor  event.Actor `json:"actor"`
	// Action: create, update, finish_planning, submit_approval, approve,
	// deny, execute, replan, cancel, status, job_execute, job_complete,
	// job_skip, job_retry, job_status, callback, hook, schedule_execute,
	// timeout, check_timeout.
	Action     string          `json:"action"`
	TargetType string          `json:"target_type"`
	TargetID   string          `json:"target_id,omitempty"`
	TargetName string          `json:"target_name,omitempty"`
	Detail     string          `json:"detail,omitempty"`
	Before     json.RawMessage `json:"before,omitempty"`
	After      json.RawMessage `json:"after,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
}

// HookDelivery is one hook request with its attempts.
type HookDelivery struct {
	ID           string        `json:"id"`
	PlanID       string        `json:"plan_id"`
	InstanceCode string        `json:"instance_code"`
	HookEvent    string        `json:"hook_event"`
	Status       string        `json:"status"`
	Attempts     int           `json:"attempts"`
	Error        string        `json:"error,omitempty"`
	Body         string        `json:"body"`
	History      []HookAttempt `json:"history"`
	CreatedAt    time.Time     `json:"created_at"`
	UpdatedAt    time.Time     `json:"updated_at"`
}

// HookAttempt is one attempt of a hook request, secrets masked.
type HookAttempt struct {
	Attempt    int             `json:"attempt"`
	Status     string          `json:"status"`
	Request    json.RawMessage `json:"request"`
	StatusCode int             `json:"status_code"`
	Response   string          `json:"response,omitempty"`
	Error      string          `json:"error,omitempty"`
	DurationMS int64           `json:"duration_ms"`
	CreatedAt  time.Time       `json:"created_at"`
}
