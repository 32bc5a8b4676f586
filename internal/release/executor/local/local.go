// Package local runs release scripts on the Herald machine itself with
// /bin/sh -c. It is meant for scripts that call out to other tools (kubectl,
// an API, ansible); the script runs with Herald's user and privileges.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"

	"github.com/herald-release/herald/internal/release/executor"
)

// defaultWaitDelay bounds how long Run keeps reading output after the shell
// has gone. A script that starts `server &` without redirecting it leaves a
// child holding the output pipe; without a bound Run would wait for that
// child to exit, possibly never.
const defaultWaitDelay = 2 * time.Second

// fallbackPath is used when Herald itself runs without PATH (some init
// systems), so that scripts still find the usual tools.
const fallbackPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

type runner struct {
	waitDelay time.Duration
}

// New returns the local executor.
func New() executor.Executor { return &runner{waitDelay: defaultWaitDelay} }

// Run implements executor.Executor.
func (r *runner) Run(ctx context.Context, spec executor.Spec, run executor.Run) (executor.Result, error) {
	spec = spec.WithDefaults()
	fail := executor.Result{ExitCode: -1}
	env, err := environ(spec, run)
	if err != nil {
		return fail, err
	}
	out := run.Output
	if out == nil {
		out = io.Discard
	}

	timeout := spec.Timeout.D()
	runCtx, cancel := context.WithTimeoutCause(ctx, timeout, &executor.TimeoutError{After: timeout})
	defer cancel()

	cmd := exec.CommandContext(runCtx, "/bin/sh", "-c", spec.Script)
	cmd.Env = env
	cmd.Dir = workDir()
	cmd.Stdin = nil // /dev/null: a script that prompts must not hang
	cmd.Stdout = out
	cmd.Stderr = out // same writer: exec uses one pipe, so order is kept
	// Own process group, so a timeout or cancel reaches every process the
	// script started, not just the shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = r.waitDelay

	if err := cmd.Start(); err != nil {
		return fail, fmt.Errorf("starting /bin/sh: %w", err)
	}
	waitErr := cmd.Wait()
	state := cmd.ProcessState

	if state != nil && state.Exited() {
		// The shell reached an exit status: that is the result, even if the
		// deadline passed while leftover output was being drained.
		if errors.Is(waitErr, exec.ErrWaitDelay) {
			fmt.Fprintf(out, "\n[herald] the script exited but a background process kept its output open; later output is not recorded (redirect the output of processes started with &)\n")
		}
		return executor.Result{ExitCode: state.ExitCode()}, nil
	}
	if cause := context.Cause(runCtx); cause != nil {
		var te *executor.TimeoutError
		if errors.As(cause, &te) {
			return fail, te
		}
		return fail, executor.Cancelled(runCtx)
	}
	if state != nil {
		if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fail, fmt.Errorf("the script's shell was killed by signal %s", ws.Signal())
		}
	}
	return fail, fmt.Errorf("running /bin/sh: %w", waitErr)
}

// workDir is where scripts start: HOME, as sshd does for the ssh executor,
// and never Herald's working directory, which holds its data folder.
func workDir() string {
	if h, err := os.UserHomeDir(); err == nil {
		if fi, err := os.Stat(h); err == nil && fi.IsDir() {
			return h
		}
	}
	return "/"
}

// environ builds the script's environment from scratch. Herald's own
// environment holds HERALD_SECRET_KEY, the database URL and the admin token,
// so only what a shell needs to behave (PATH, HOME, LANG) is passed on.
func environ(spec executor.Spec, run executor.Run) ([]string, error) {
	vars, err := executor.MergedEnv(spec, run)
	if err != nil {
		return nil, err
	}
	base := map[string]string{"PATH": fallbackPath}
	for _, k := range []string{"PATH", "HOME", "LANG"} {
		if v, ok := os.LookupEnv(k); ok && v != "" {
			base[k] = v
		}
	}
	maps.Copy(base, vars)
	env := make([]string, 0, len(base))
	for _, k := range slices.Sorted(maps.Keys(base)) {
		env = append(env, k+"="+base[k])
	}
	return env, nil
}
