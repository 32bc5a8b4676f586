package testsupport

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// robotFake is what the fake group robots (DingTalk, Feishu, WeCom) share:
// the server, the clock, the messages accepted, scripted failures, the
// request count and the send times their rate limits count. A fake embeds
// it, and its handler holds mu while it answers a request.
type robotFake[M any] struct {
	srv    *httptest.Server
	name   string                                            // in failure messages: "fake <name>: ..."
	answer func(w http.ResponseWriter, code int, msg string) // the platform's error body

	mu       sync.Mutex
	now      func() time.Time
	msgs     []M
	changed  chan struct{} // closed and replaced on every new message
	accepted []time.Time   // rate-limited sends, for the rate windows
	script   []robotFailure
	requests int
}

type robotFailure struct {
	status int // HTTP status; 0 means 200 with the code
	code   int
	msg    string
}

func newRobotFake[M any](name string, answer func(w http.ResponseWriter, code int, msg string)) robotFake[M] {
	return robotFake[M]{name: name, answer: answer, now: time.Now, changed: make(chan struct{})}
}

// start serves the fake's handler until t ends.
func (r *robotFake[M]) start(t testing.TB, serve http.HandlerFunc) {
	r.srv = httptest.NewServer(serve)
	t.Cleanup(r.srv.Close)
}

// URL is the server's base URL (for WeCom, the api_base_url).
func (r *robotFake[M]) URL() string { return r.srv.URL }

// SetNow sets the clock that signatures and rate limits are checked
// against, for fixed-timestamp test vectors.
func (r *robotFake[M]) SetNow(now func() time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now = now
}

// FailNext makes the next n message sends answer the platform's error
// code with msg.
func (r *robotFake[M]) FailNext(n, code int, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for range n {
		r.script = append(r.script, robotFailure{code: code, msg: msg})
	}
}

// FailNextStatus makes the next n message sends answer HTTP status.
func (r *robotFake[M]) FailNextStatus(n, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for range n {
		r.script = append(r.script, robotFailure{status: status})
	}
}

// Requests counts every message send received, accepted or not.
func (r *robotFake[M]) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Messages returns the messages accepted so far.
func (r *robotFake[M]) Messages() []M {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]M(nil), r.msgs...)
}

// WaitMessages waits until at least n messages were accepted and returns
// them; it fails the test after 10 seconds. Call it from the test
// goroutine.
func (r *robotFake[M]) WaitMessages(t testing.TB, n int) []M {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		r.mu.Lock()
		if len(r.msgs) >= n {
			out := append([]M(nil), r.msgs...)
			r.mu.Unlock()
			return out
		}
		changed, got := r.changed, len(r.msgs)
		r.mu.Unlock()
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("fake %s: %d messages after 10s, want %d", r.name, got, n)
		}
	}
}

// begin counts a message send and answers the next scripted failure, if
// any, telling whether it did; mu is held.
func (r *robotFake[M]) begin(w http.ResponseWriter) bool {
	r.requests++
	return r.scripted(w, &r.script)
}

// scripted answers the next failure of script, if any; mu is held.
func (r *robotFake[M]) scripted(w http.ResponseWriter, script *[]robotFailure) bool {
	if len(*script) == 0 {
		return false
	}
	fail := (*script)[0]
	*script = (*script)[1:]
	if fail.status != 0 {
		http.Error(w, http.StatusText(fail.status), fail.status)
	} else {
		r.answer(w, fail.code, fail.msg)
	}
	return true
}

// rate forgets the sends a minute old or more and counts those of the
// last second and of the last minute before now; mu is held.
func (r *robotFake[M]) rate(now time.Time) (lastSecond, lastMinute int) {
	keep := r.accepted[:0]
	for _, t := range r.accepted {
		if now.Sub(t) < time.Minute {
			keep = append(keep, t)
			if now.Sub(t) < time.Second {
				lastSecond++
			}
		}
	}
	r.accepted = keep
	return lastSecond, len(keep)
}

// accept keeps a rate-limited message sent at now; mu is held.
func (r *robotFake[M]) accept(now time.Time, m M) {
	r.accepted = append(r.accepted, now)
	r.record(m)
}

// record keeps an accepted message and wakes waiters; mu is held.
func (r *robotFake[M]) record(m M) {
	r.msgs = append(r.msgs, m)
	close(r.changed)
	r.changed = make(chan struct{})
}

// randomHex makes tokens, keys and secrets random, so a leak check cannot
// pass by accident (crypto/rand.Read never fails since Go 1.24).
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
