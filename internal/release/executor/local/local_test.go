package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/duration"
	"github.com/herald-release/herald/internal/release/executor"
	"github.com/herald-release/herald/internal/release/executor/internal/proctest"
)

// TestMain plants secrets in Herald's own environment, as production has
// them; t.Setenv cannot be used with parallel tests.
func TestMain(m *testing.M) {
	os.Setenv("HERALD_SECRET_KEY", "leak-canary-secret")
	os.Setenv("HERALD_DATABASE_URL", "postgres://leak-canary")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "leak-canary-aws")
	os.Exit(m.Run())
}

func run(t *testing.T, e executor.Executor, ctx context.Context, spec executor.Spec, vars map[string]string) (executor.Result, string, error) {
	t.Helper()
	var out executor.Tail
	spec.Type = executor.TypeLocal
	res, err := e.Run(ctx, spec, executor.Run{Host: "h1", Address: "10.0.0.1", Vars: vars, Output: &out})
	return res, out.String(), err
}

func TestVariables(t *testing.T) {
	t.Parallel()
	res, out, err := run(t, New(), context.Background(), executor.Spec{
		Script: `echo "host=$HERALD_HOST version=$HERALD_VERSION foo=$FOO both=$BOTH"; test -n "$PATH" && echo path-ok; echo to-stderr >&2`,
		Env:    map[string]string{"FOO": "from spec", "BOTH": "spec"},
	}, map[string]string{"HERALD_HOST": "h1", "HERALD_VERSION": "v1.2.3 'quoted'", "BOTH": "vars"})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run = %v, %v\n%s", res, err, out)
	}
	for _, want := range []string{"host=h1 version=v1.2.3 'quoted' foo=from spec both=vars\n", "path-ok\n", "to-stderr\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestParentEnvironmentNotLeaked(t *testing.T) {
	t.Parallel()
	res, out, err := run(t, New(), context.Background(), executor.Spec{Script: "env"}, map[string]string{"HERALD_HOST": "h1"})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run = %v, %v", res, err)
	}
	if strings.Contains(out, "leak-canary") {
		t.Fatalf("the script saw Herald's environment:\n%s", out)
	}
	if !strings.Contains(out, "HERALD_HOST=h1") {
		t.Fatalf("the run's own variables are missing:\n%s", out)
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		script string
		code   int
		errMsg string
	}{
		{"true", 0, ""},
		{"exit 1", 1, ""},
		{"exit 3", 3, ""},
		{"exit 255", 255, ""},
		{"no-such-command-herald", 127, ""},
		{"kill -9 $$", -1, "killed by signal"},
	} {
		t.Run(tt.script, func(t *testing.T) {
			t.Parallel()
			res, out, err := run(t, New(), context.Background(), executor.Spec{Script: tt.script}, nil)
			if res.ExitCode != tt.code {
				t.Fatalf("exit code %d, want %d (err %v)\n%s", res.ExitCode, tt.code, err, out)
			}
			if tt.errMsg == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.errMsg != "" && (err == nil || !strings.Contains(err.Error(), tt.errMsg)) {
				t.Fatalf("error %v, want it to mention %q", err, tt.errMsg)
			}
		})
	}
}

func TestOutputKeepsTheLast64KiB(t *testing.T) {
	t.Parallel()
	// ~150 KiB of numbered lines, then a marker that must survive.
	res, out, err := run(t, New(), context.Background(), executor.Spec{
		Script: `i=0; while [ $i -lt 3000 ]; do echo "line $i ............................................"; i=$((i+1)); done; echo END >&2`,
	}, nil)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run = %v, %v", res, err)
	}
	if len(out) != executor.TailSize {
		t.Fatalf("kept %d bytes, want %d", len(out), executor.TailSize)
	}
	if !strings.HasSuffix(out, "line 2999 ............................................\nEND\n") {
		t.Fatalf("the end of the output was lost: %q", out[len(out)-80:])
	}
	if strings.Contains(out, "line 0 ") {
		t.Fatal("the start of the output was kept")
	}
}

func TestTimeoutKillsTheProcessGroup(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	start := time.Now()
	res, out, err := run(t, New(), context.Background(), executor.Spec{
		Script:  `sleep 30 & echo $! > "$PID_FILE"; sleep 30`,
		Timeout: duration.Duration(200 * time.Millisecond),
		Env:     map[string]string{"PID_FILE": pidFile},
	}, nil)
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Fatalf("Run took %s after a 200ms timeout", elapsed)
	}
	if res.ExitCode != -1 {
		t.Fatalf("exit code %d, want -1", res.ExitCode)
	}
	var te *executor.TimeoutError
	if !errors.As(err, &te) || err.Error() != "timed out after 200ms: raise the executor timeout or speed up the script" {
		t.Fatalf("err = %v\n%s", err, out)
	}
	proctest.WaitGone(t, proctest.ReadPID(t, pidFile))
}

func TestCancelKillsTheProcessGroup(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pid := make(chan int, 1)
	go func() {
		// Cancel only once the script is surely running its children.
		pid <- proctest.ReadPID(t, pidFile)
		cancel()
	}()
	res, _, err := run(t, New(), ctx, executor.Spec{
		Script: `sleep 30 & echo $! > "$PID_FILE"; wait`,
		Env:    map[string]string{"PID_FILE": pidFile},
	}, nil)
	if res.ExitCode != -1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, %v; want -1 and context.Canceled", res, err)
	}
	proctest.WaitGone(t, <-pid)
}

func TestBackgroundChildDoesNotBlockRun(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	e := &runner{waitDelay: 100 * time.Millisecond}
	done := make(chan struct{})
	var res executor.Result
	var out string
	var err error
	go func() {
		defer close(done)
		// The child inherits stdout and keeps it open for 1000s.
		res, out, err = run(t, e, context.Background(), executor.Spec{
			Script: `sleep 1000 & echo $! > "$PID_FILE"; echo started`,
			Env:    map[string]string{"PID_FILE": pidFile},
		}, nil)
	}()
	pid := proctest.ReadPID(t, pidFile)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run is blocked on the background child's output")
	}
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run = %v, %v", res, err)
	}
	if !strings.Contains(out, "started\n") || !strings.Contains(out, "background process") {
		t.Fatalf("output: %q", out)
	}
	if !proctest.Alive(pid) {
		t.Fatal("a background process of a script that succeeded was killed")
	}
}

func TestInvalidVariableNameIsRefused(t *testing.T) {
	t.Parallel()
	res, _, err := run(t, New(), context.Background(), executor.Spec{Script: "true"}, map[string]string{"A;B": "x"})
	if err == nil || res.ExitCode != -1 {
		t.Fatalf("Run = %v, %v", res, err)
	}
}

func TestEnvironBase(t *testing.T) {
	t.Parallel()
	env, err := environ(executor.Spec{Env: map[string]string{"PATH": "/custom"}}, executor.Run{})
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k != "PATH" && k != "HOME" && k != "LANG" {
			t.Errorf("unexpected variable %s", kv)
		}
	}
	if !strings.Contains(fmt.Sprint(env), "PATH=/custom") {
		t.Errorf("spec.Env did not override PATH: %v", env)
	}
}
