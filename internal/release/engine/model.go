package engine

import (
	"time"

	"github.com/herald-release/herald/internal/duration"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/release/executor"
)

// Task types, strategies and statuses of CONTRACT §5.
const (
	TypeDeploy   = "deploy"
	TypeRollback = "rollback"
	TypeStop     = "stop"

	StrategyCanary    = "canary"
	StrategyRolling   = "rolling"
	StrategyBlueGreen = "blue_green"

	StatusPending   = "pending"
	StatusRunning   = "running"
	StatusPaused    = "paused"
	StatusSuccess   = "success"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// Host statuses; batches use the same words.
const (
	HostPending = "pending"
	HostRunning = "running"
	HostSuccess = "success"
	HostFailed  = "failed"
	HostSkipped = "skipped"
)

var (
	types      = []string{TypeDeploy, TypeRollback, TypeStop}
	strategies = []string{StrategyCanary, StrategyRolling, StrategyBlueGreen}
	statuses   = []string{StatusPending, StatusRunning, StatusPaused, StatusSuccess, StatusFailed, StatusCancelled}
)

// Active tells whether a task status holds its environment.
func Active(status string) bool {
	return status == StatusPending || status == StatusRunning || status == StatusPaused
}

// Canary is the canary option: a count of hosts or a percent of them.
type Canary struct {
	Count   int `json:"count,omitempty"`
	Percent int `json:"percent,omitempty"`
}

// TaskOptions are the strategy settings of a task, as requested.
type TaskOptions struct {
	Canary           *Canary           `json:"canary,omitempty"`
	AutoPromoteAfter duration.Duration `json:"auto_promote_after,omitempty"`
	BatchSize        int               `json:"batch_size,omitempty"`
	BatchPercent     int               `json:"batch_percent,omitempty"`
	MaxParallel      int               `json:"max_parallel,omitempty"`
	MaxFailures      int               `json:"max_failures"`
	AutoRollback     bool              `json:"auto_rollback"`
}

// Task is a release task as the API shows it (CONTRACT §5).
type Task struct {
	ID          string `json:"id"`
	ProjectID   string `json:"project_id"`
	Environment string `json:"environment"`
	VersionID   string `json:"version_id"`
	Version     string `json:"version"`
	Type        string `json:"type"`
	Strategy    string `json:"strategy"`
	Status      string `json:"status"`
	Phase       string `json:"phase"`
	TaskOptions
	// Executor is the task's override, masked; absent when the task uses
	// the environment's executor.
	Executor *executor.Spec `json:"executor,omitempty"`
	// TargetGroup is the blue-green group the task deploys to.
	TargetGroup string `json:"target_group,omitempty"`
	// CancelRequested: cancel was asked while hosts were running; the task
	// becomes cancelled when they finish.
	CancelRequested bool       `json:"cancel_requested"`
	AutoPromoteAt   *time.Time `json:"auto_promote_at,omitempty"`
	// Run counts executions: 1, then one more per retry.
	Run   int    `json:"run"`
	Error string `json:"error,omitempty"`
	// RollbackOf is the failed task an automatic rollback undoes;
	// RollbackTaskID the rollback a failed task started.
	RollbackOf     string      `json:"rollback_of,omitempty"`
	RollbackTaskID string      `json:"rollback_task_id,omitempty"`
	Counts         Counts      `json:"counts"`
	Hosts          []Host      `json:"hosts,omitempty"`
	Batches        []Batch     `json:"batches,omitempty"`
	CreatedBy      event.Actor `json:"created_by"`
	CreatedAt      time.Time   `json:"created_at"`
	UpdatedAt      time.Time   `json:"updated_at"`
	StartedAt      *time.Time  `json:"started_at"`
	FinishedAt     *time.Time  `json:"finished_at"`
	// Duration is from start to finish, or to now while the task is active.
	Duration string `json:"duration"`
}

// Counts are a task's host counts (CONTRACT §5).
type Counts struct {
	Total     int `json:"total"`
	Canary    int `json:"canary"`
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
}

// Host is one host of a task.
type Host struct {
	Name       string     `json:"name"`
	Address    string     `json:"address"`
	Group      string     `json:"group,omitempty"`
	Canary     bool       `json:"canary,omitempty"`
	Status     string     `json:"status"`
	Batch      int        `json:"batch"`
	Phase      string     `json:"phase"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	ExitCode   *int       `json:"exit_code"`
	Error      string     `json:"error"`
}

// Batch is one batch of a task.
type Batch struct {
	Number     int        `json:"number"`
	Phase      string     `json:"phase"`
	Status     string     `json:"status"`
	Hosts      []string   `json:"hosts"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// humanDuration renders a task's age for people: milliseconds under a
// second, whole seconds above.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
