package testsupport

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Receiver is a fake HTTP callback receiver (the other end of a custom
// channel or a plan hook). It records every request, answers as scripted,
// and can check Standard Webhooks signatures the way a real receiver would.
//
// It is built to be cheap under load (a benchmark pushes tens of thousands
// of events through it): counting is one atomic add, waiters are only
// woken when someone waits, and recording can be turned off.
type Receiver struct {
	srv  *httptest.Server
	done chan struct{} // closed at cleanup: hanging handlers let go

	count     atomic.Int64
	recording atomic.Bool
	nWaiters  atomic.Int32 // fast path: no lock when nobody waits

	mu       sync.Mutex
	reqs     []ReceivedRequest
	script   []Reply
	deflt    Reply
	secret   string // when set, requests must carry a valid signature
	verifier *standardwebhooks.Webhook
	waiters  []recvWaiter
}

// ReceivedRequest is one request as the receiver saw it.
type ReceivedRequest struct {
	// N numbers requests from 1 in order of arrival.
	N        int64
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
	At       time.Time
	// SignatureErr is the verification result when the receiver requires
	// signatures (RequireSignature); nil otherwise or when valid.
	SignatureErr error
}

// Reply scripts the answer to one request. The zero Reply answers 200 with
// an empty JSON object.
type Reply struct {
	Status int // 0 means 200
	Body   string
	Header map[string]string
	// RetryAfter is sent as the Retry-After header: seconds ("3") or an
	// HTTP date.
	RetryAfter string
	// Delay waits before answering, or until the client gives up,
	// whichever comes first.
	Delay time.Duration
	// Hang never answers: the request ends when the client gives up.
	Hang bool
	// Reset drops the connection without an answer (TCP RST).
	Reset bool
}

type recvWaiter struct {
	n  int64
	ch chan struct{}
}

// NewReceiver starts a receiver that answers 200 until scripted otherwise.
// It stops when t ends.
func NewReceiver(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{done: make(chan struct{})}
	r.recording.Store(true)
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		close(r.done)
		r.srv.CloseClientConnections()
		r.srv.Close()
	})
	return r
}

// URL is the receiver's base URL; any path is accepted.
func (r *Receiver) URL() string { return r.srv.URL }

// Client is an HTTP client that reaches the receiver (no egress policy).
func (r *Receiver) Client() *http.Client { return r.srv.Client() }

// Script queues replies for the next requests, one each, in order; once
// they are used up the default reply (SetDefault) applies.
func (r *Receiver) Script(replies ...Reply) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.script = append(r.script, replies...)
}

// SetDefault sets the reply to requests that have no scripted reply.
func (r *Receiver) SetDefault(reply Reply) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deflt = reply
}

// RequireSignature makes the receiver verify every request's Standard
// Webhooks signature with secret ("whsec_…"), timestamp tolerance
// included, and answer 401 to those that fail, as a careful receiver does.
// An empty secret turns the check off.
func (r *Receiver) RequireSignature(secret string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if secret == "" {
		r.secret, r.verifier = "", nil
		return nil
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	r.secret, r.verifier = secret, wh
	return nil
}

// SetRecording turns keeping requests on (the default) or off; the count
// goes on either way. Turn it off to push many events through cheaply.
func (r *Receiver) SetRecording(on bool) { r.recording.Store(on) }

// Count is how many requests arrived, answered or not.
func (r *Receiver) Count() int64 { return r.count.Load() }

// Requests returns the recorded requests in order of arrival.
func (r *Receiver) Requests() []ReceivedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ReceivedRequest(nil), r.reqs...)
}

// Wait blocks until at least n requests have arrived or ctx ends.
func (r *Receiver) Wait(ctx context.Context, n int64) error {
	if r.count.Load() >= n {
		return nil
	}
	ch := make(chan struct{})
	r.mu.Lock()
	r.waiters = append(r.waiters, recvWaiter{n: n, ch: ch})
	r.nWaiters.Add(1)
	r.mu.Unlock()
	// A request that arrived between the first check and registering has
	// not seen this waiter; look again.
	r.wake()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		r.mu.Lock()
		for i, w := range r.waiters {
			if w.ch == ch {
				r.waiters = append(r.waiters[:i], r.waiters[i+1:]...)
				r.nWaiters.Add(-1)
				break
			}
		}
		r.mu.Unlock()
		return fmt.Errorf("fake receiver: %d requests, want %d: %w", r.count.Load(), n, ctx.Err())
	}
}

// WaitRequests waits until at least n requests have arrived and returns
// the recorded ones; it fails the test after 10 seconds.
func (r *Receiver) WaitRequests(t testing.TB, n int) []ReceivedRequest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Wait(ctx, int64(n)); err != nil {
		t.Fatal(err)
	}
	return r.Requests()
}

// wake releases the waiters whose count has been reached.
func (r *Receiver) wake() {
	got := r.count.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	kept := r.waiters[:0]
	for _, w := range r.waiters {
		if got >= w.n {
			close(w.ch)
			r.nWaiters.Add(-1)
		} else {
			kept = append(kept, w)
		}
	}
	clear(r.waiters[len(kept):])
	r.waiters = kept
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 16<<20))
	n := r.count.Add(1)

	r.mu.Lock()
	reply := r.deflt
	if len(r.script) > 0 {
		reply = r.script[0]
		r.script = r.script[1:]
	}
	var sigErr error
	if r.verifier != nil {
		sigErr = r.verifier.Verify(body, req.Header)
	}
	if r.recording.Load() {
		r.reqs = append(r.reqs, ReceivedRequest{
			N: n, Method: req.Method, Path: req.URL.Path, RawQuery: req.URL.RawQuery,
			Header: req.Header.Clone(), Body: body, At: time.Now(), SignatureErr: sigErr,
		})
	}
	r.mu.Unlock()
	if r.nWaiters.Load() > 0 {
		r.wake()
	}

	r.answer(w, req, reply, sigErr)
}

func (r *Receiver) answer(w http.ResponseWriter, req *http.Request, reply Reply, sigErr error) {
	switch {
	case reply.Hang:
		select {
		case <-req.Context().Done():
		case <-r.done:
		}
		return
	case reply.Delay > 0:
		t := time.NewTimer(reply.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-req.Context().Done():
			return
		case <-r.done:
			return
		}
	}
	if reply.Reset {
		recvReset(w)
		return
	}
	if sigErr != nil && reply.Status == 0 {
		http.Error(w, `{"error":"invalid signature"}`, http.StatusUnauthorized)
		return
	}
	for k, v := range reply.Header {
		w.Header().Set(k, v)
	}
	if reply.RetryAfter != "" {
		w.Header().Set("Retry-After", reply.RetryAfter)
	}
	status, body := reply.Status, reply.Body
	if status == 0 {
		status = http.StatusOK
	}
	if body == "" && status < 300 {
		body = "{}"
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// recvReset closes the connection with a TCP RST, so the client sees
// "connection reset by peer" rather than a clean EOF.
func recvReset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("fake receiver: connection cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// Verify checks the request's Standard Webhooks signature with secret
// ("whsec_…"), timestamp tolerance (5 minutes from now) included.
func (q ReceivedRequest) Verify(secret string) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	return wh.Verify(q.Body, q.Header)
}
