// Package proctest helps executor tests prove that processes were killed.
package proctest

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ReadPID waits for a script to write its background child's pid to path.
// Polling is the only portable way to wait for another process's write.
func ReadPID(t testing.TB, path string) int {
	t.Helper()
	var pid int
	poll(t, 5*time.Second, "pid file "+path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

// WaitGone fails t unless pid is gone within a few seconds. A zombie counts
// as gone: a killed orphan waits for its reaper, and in a container PID 1
// may never reap it.
func WaitGone(t testing.TB, pid int) {
	t.Helper()
	poll(t, 5*time.Second, "process "+strconv.Itoa(pid)+" to exit", func() bool { return !Alive(pid) })
}

// Alive reports whether pid exists and is not a zombie (Linux /proc).
func Alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may itself
	// contain spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

func poll(t testing.TB, limit time.Duration, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		<-tick.C
	}
}
