// Package executor runs a release script on one host. The engine does not
// care how: `local` runs it here under /bin/sh, `ssh` runs it on the host's
// address. Both get the same HERALD_* variables and the same timeout rules.
package executor

import (
	"context"
	"io"

	"github.com/herald-release/herald/internal/duration"
)

// Spec is the Executor object of CONTRACT §4, as configured on an
// environment or overridden by a task.
type Spec struct {
	Type    string            `json:"type"`
	Script  string            `json:"script"`
	Timeout duration.Duration `json:"timeout,omitempty"`
	Env     map[string]string `json:"env,omitempty"`

	// ssh only.
	User       string `json:"user,omitempty"`
	Port       int    `json:"port,omitempty"`
	PrivateKey string `json:"private_key,omitempty"`
	KnownHosts string `json:"known_hosts,omitempty"`
}

// SecretFields are the Spec fields masked in responses and encrypted at rest.
var SecretFields = []string{"private_key"}

// Run is one script run on one host.
type Run struct {
	Host    string
	Address string
	// Vars are the HERALD_* variables of CONTRACT §4; Spec.Env is added
	// by the executor, and Vars win over it.
	Vars map[string]string
	// Output receives stdout and stderr interleaved as they come.
	Output io.Writer
}

// Result is how a run ended. ExitCode is -1 when the script never ran to an
// exit status (connection refused, timeout, cancelled).
type Result struct {
	ExitCode int
}

// Executor runs scripts. Run returns a nil error only when the script ran
// to an exit status (which may be non-zero); err says why it could not.
type Executor interface {
	Run(ctx context.Context, spec Spec, run Run) (Result, error)
}
