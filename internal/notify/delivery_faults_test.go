package notify_test

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/notify"
	"github.com/herald-release/herald/internal/testsupport"
)

// Receivers that misbehave, end to end: an event goes through routing and
// the delivery worker to a receiver that trickles, resets, shows an
// untrusted certificate, redirects, is gone, asks for a pause, or answers
// with one of its platform's error codes; history must end in the state
// DESIGN.md gives for each. Every case has its own project, configuration
// and receiver, so the cases share one Herald per database. Retries of IM
// channels follow the test schedule (10ms, 20ms, 40ms); custom channels
// retry on their own retry_interval (at least 1s).

// faultCase is one project with one configuration, heard on version_created.
type faultCase struct {
	env     *apptest.Env
	project string
	config  notify.Config
}

var caseSeq atomic.Int64

func newFaultCase(t *testing.T, env *apptest.Env, channels ...map[string]any) *faultCase {
	t.Helper()
	c := &faultCase{env: env, project: fmt.Sprintf("fault-%d", caseSeq.Add(1))}
	createProject(t, env, c.project)
	env.JSON(t, "POST", "/api/v1/release/projects/"+c.project+"/callbacks", map[string]any{
		"events": []string{"version_created"}, "channels": channels,
	}, 201, &c.config)
	return c
}

// release publishes an event to the case's configuration.
func (c *faultCase) release(t *testing.T, version string) {
	t.Helper()
	c.env.JSON(t, "POST", "/api/v1/release/projects/"+c.project+"/versions", map[string]any{"name": version}, 201, nil)
}

// waitHistory polls the configuration's history, oldest attempt first,
// until cond holds.
func (c *faultCase) waitHistory(t *testing.T, what string, cond func([]*notify.Entry) bool) []*notify.Entry {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		es := history(t, c.env, "limit=500&config_id="+c.config.ID)
		slices.Reverse(es)
		if cond(es) {
			return es
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; history: %s", what, describeAttempts(es))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// statuses describes attempts for failure messages.
func describeAttempts(es []*notify.Entry) string {
	var s []string
	for _, e := range es {
		s = append(s, fmt.Sprintf("\n  attempt %d %s (HTTP %d, next %v): %s", e.Attempt, e.Status, e.StatusCode, e.NextAttemptAt, e.Error))
	}
	return strings.Join(s, "")
}

// wantRetried: the first attempt is pending with next_attempt_at and an
// error containing want, the second a success of the same delivery.
func wantRetried(t *testing.T, c *faultCase, want ...string) []*notify.Entry {
	t.Helper()
	es := c.waitHistory(t, "a failed attempt, then a successful retry", func(es []*notify.Entry) bool {
		return len(es) >= 2 && es[len(es)-1].Status != "pending"
	})
	first, second := es[0], es[1]
	if len(es) != 2 || first.Status != "pending" || first.Attempt != 1 || first.NextAttemptAt == nil ||
		second.Status != "success" || second.Attempt != 2 || second.DeliveryID != first.DeliveryID {
		t.Fatalf("history: %s\nwant a pending attempt 1, then a successful attempt 2 of the same delivery", describeAttempts(es))
	}
	for _, w := range want {
		if !strings.Contains(first.Error, w) {
			t.Errorf("first attempt's error %q does not say %q", first.Error, w)
		}
	}
	return es
}

// wantFailedOnce: one attempt, failed for good, its error containing want.
func wantFailedOnce(t *testing.T, c *faultCase, want ...string) *notify.Entry {
	t.Helper()
	es := c.waitHistory(t, "a failed attempt", func(es []*notify.Entry) bool {
		return len(es) > 0 && es[len(es)-1].Status != "pending"
	})
	e := es[0]
	if len(es) != 1 || e.Status != "failed" || e.Attempt != 1 || e.NextAttemptAt != nil {
		t.Fatalf("history: %s\nwant one failed attempt, without a retry", describeAttempts(es))
	}
	for _, w := range want {
		if !strings.Contains(e.Error, w) {
			t.Errorf("error %q does not say %q", e.Error, w)
		}
	}
	return e
}

// wantPendingFor: one attempt, pending, the next one at least wait later.
func wantPendingFor(t *testing.T, c *faultCase, wait, slack time.Duration, want ...string) *notify.Entry {
	t.Helper()
	es := c.waitHistory(t, "a pending attempt", func(es []*notify.Entry) bool { return len(es) > 0 })
	e := es[0]
	if len(es) != 1 || e.Status != "pending" || e.Attempt != 1 || e.NextAttemptAt == nil {
		t.Fatalf("history: %s\nwant one pending attempt", describeAttempts(es))
	}
	if got := e.NextAttemptAt.Sub(e.CreatedAt); got < wait-slack || got > wait+slack {
		t.Errorf("next_attempt_at is %v after the attempt, want %v", got, wait)
	}
	for _, w := range want {
		if !strings.Contains(e.Error, w) {
			t.Errorf("error %q does not say %q", e.Error, w)
		}
	}
	return e
}

func customChannel(url string, extra ...any) map[string]any {
	cfg := map[string]any{"url": url, "retry_count": 2, "retry_interval": 1}
	for i := 0; i+1 < len(extra); i += 2 {
		cfg[extra[i].(string)] = extra[i+1]
	}
	return map[string]any{"type": "custom", "config": cfg}
}

// brokenAnswers serves its first answer with broken, the rest with ok.
func brokenAnswers(t *testing.T, broken, ok http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	n := new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if n.Add(1) == 1 {
			broken(w, r)
			return
		}
		ok(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, n
}

// trickle answers 200 and then a byte of body every 100ms, for longer
// than any per-attempt timeout, until the client gives up.
func trickle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "4096")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"errcode":`)
	w.(http.Flusher).Flush()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for range 300 {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if _, err := io.WriteString(w, " "); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}
}

// resetMidAnswer sends the status line, headers and part of the body, then
// drops the connection with a TCP RST.
func resetMidAnswer(w http.ResponseWriter, _ *http.Request) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"errcode\":")
	_ = buf.Flush()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func answerWith(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
}

func TestDeliveryFaultsEndInTheRightState(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, env *apptest.Env) {
		t.Run("slow body past the timeout is retried as a timeout", func(t *testing.T) {
			t.Parallel()
			srv, n := brokenAnswers(t, trickle, answerWith(`{}`))
			c := newFaultCase(t, env, customChannel(srv.URL+"/hook", "timeout", 1))
			c.release(t, "v1")
			es := wantRetried(t, c, "timeout", "will retry")
			if es[0].StatusCode != http.StatusOK {
				t.Errorf("the cut-off answer's status is not kept: %d", es[0].StatusCode)
			}
			if n.Load() != 2 {
				t.Errorf("the receiver saw %d requests, want 2", n.Load())
			}
		})

		t.Run("an answer the database cannot store as text is recorded once, cleaned", func(t *testing.T) {
			t.Parallel()
			// NUL bytes and invalid UTF-8 are refused by PostgreSQL's text
			// columns; before they were cleaned, such an answer failed the
			// whole group commit and the delivery was sent again and again.
			var hits atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				hits.Add(1)
				_, _ = w.Write([]byte("ok\x00\xff\xfe done"))
			}))
			t.Cleanup(srv.Close)
			c := newFaultCase(t, env, customChannel(srv.URL+"/hook"))
			c.release(t, "v1")
			es := c.waitHistory(t, "one successful attempt", func(es []*notify.Entry) bool { return len(es) >= 1 })
			if len(es) != 1 || es[0].Status != "success" || es[0].Response != "ok\uFFFD done" || hits.Load() != 1 {
				t.Fatalf("want one success with the answer cleaned, sent once; got %d hits and %s (response %q)",
					hits.Load(), describeAttempts(es), es[0].Response)
			}
		})

		t.Run("connection reset mid-answer is retried", func(t *testing.T) {
			t.Parallel()
			// DingTalk judges by the body: a cut-off 200 must not read as
			// "not DingTalk's JSON, check webhook_url" (a permanent failure).
			srv, n := brokenAnswers(t, resetMidAnswer, answerWith(`{"errcode":0,"errmsg":"ok"}`))
			c := newFaultCase(t, env, map[string]any{"type": "dingtalk", "config": map[string]any{
				"webhook_url": srv.URL + "/robot/send?access_token=tok0123456789abcdef"}})
			c.release(t, "v1")
			es := wantRetried(t, c, "will retry")
			if strings.Contains(es[0].Error, "unexpected answer") || strings.Contains(es[0].Error, "tok0123456789abcdef") {
				t.Errorf("error %q", es[0].Error)
			}
			if n.Load() != 2 {
				t.Errorf("the receiver saw %d requests, want 2", n.Load())
			}
		})

		t.Run("untrusted TLS certificate fails at once", func(t *testing.T) {
			t.Parallel()
			// Decision: permanent. The certificate will not become trusted
			// between retries; the user must fix it (or the URL) and
			// redeliver, and should learn that now, not hours later.
			var hits atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
			srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes
			srv.StartTLS()
			t.Cleanup(srv.Close)
			c := newFaultCase(t, env, customChannel(srv.URL+"/hook"))
			c.release(t, "v1")
			wantFailedOnce(t, c, "TLS certificate is not trusted", "certificate")
			if hits.Load() != 0 {
				t.Errorf("the handler ran %d times past a failed handshake", hits.Load())
			}
		})

		t.Run("redirect is not followed and fails", func(t *testing.T) {
			t.Parallel()
			elsewhere := testsupport.NewReceiver(t)
			rcv := testsupport.NewReceiver(t)
			rcv.SetDefault(testsupport.Reply{Status: http.StatusFound, Header: map[string]string{"Location": elsewhere.URL() + "/landed"}})
			c := newFaultCase(t, env, customChannel(rcv.URL()+"/hook"))
			c.release(t, "v1")
			e := wantFailedOnce(t, c, "HTTP 302", "redirect", "not followed")
			if e.StatusCode != http.StatusFound || rcv.Count() != 1 || elsewhere.Count() != 0 {
				t.Errorf("status %d; the receiver saw %d requests, the redirect target %d", e.StatusCode, rcv.Count(), elsewhere.Count())
			}
		})

		t.Run("redirect from an IM robot fails", func(t *testing.T) {
			t.Parallel()
			fei := testsupport.NewFeishu(t, "")
			fei.FailNextStatus(1, http.StatusMovedPermanently)
			c := newFaultCase(t, env, map[string]any{"type": "feishu", "config": map[string]any{"webhook_url": fei.WebhookURL()}})
			c.release(t, "v1")
			wantFailedOnce(t, c, "HTTP 301", "not followed")
			if fei.Requests() != 1 {
				t.Errorf("feishu saw %d requests", fei.Requests())
			}
		})

		t.Run("410 disables the channel", func(t *testing.T) {
			t.Parallel()
			gone := testsupport.NewReceiver(t)
			gone.SetDefault(testsupport.Reply{Status: http.StatusGone})
			alive := testsupport.NewReceiver(t)
			c := newFaultCase(t, env, customChannel(gone.URL()+"/hook"), customChannel(alive.URL()+"/hook"))
			goneID, aliveID := c.config.Channels[0].ID, c.config.Channels[1].ID
			byChannel := func(es []*notify.Entry, id string) (out []*notify.Entry) {
				for _, e := range es {
					if e.ChannelID == id {
						out = append(out, e)
					}
				}
				return out
			}
			c.release(t, "v1")
			es := c.waitHistory(t, "both channels' attempts", func(es []*notify.Entry) bool {
				return len(byChannel(es, goneID)) == 1 && len(byChannel(es, aliveID)) == 1
			})
			e := byChannel(es, goneID)[0]
			if e.Status != "failed" || e.NextAttemptAt != nil || e.StatusCode != http.StatusGone ||
				!strings.Contains(e.Error, "410") || !strings.Contains(e.Error, "disabled") {
				t.Fatalf("410 attempt: %s\nwant failed, saying the channel is disabled", describeAttempts([]*notify.Entry{e}))
			}
			var cfg notify.Config
			env.JSON(t, "GET", "/api/v1/release/callbacks/"+c.config.ID, nil, 200, &cfg)
			if cfg.Channels[0].Enabled || cfg.Channels[0].DisabledReason == "" || !cfg.Channels[1].Enabled || !cfg.Enabled {
				t.Fatalf("after 410: %+v; want only the first channel disabled, with a reason", cfg.Channels)
			}
			// The next event goes to the live channel only: a disabled
			// channel gets no delivery at all.
			c.release(t, "v2")
			es = c.waitHistory(t, "the live channel's second attempt", func(es []*notify.Entry) bool {
				return len(byChannel(es, aliveID)) == 2
			})
			if n := len(byChannel(es, goneID)); n != 1 || gone.Count() != 1 {
				t.Fatalf("the disabled channel has %d attempts and its endpoint %d requests; want 1 and 1", n, gone.Count())
			}
		})

		t.Run("429 with Retry-After sets next_attempt_at", func(t *testing.T) {
			t.Parallel()
			rcv := testsupport.NewReceiver(t)
			rcv.Script(testsupport.Reply{Status: http.StatusTooManyRequests, RetryAfter: "120"})
			c := newFaultCase(t, env, customChannel(rcv.URL()+"/hook"))
			c.release(t, "v1")
			e := wantPendingFor(t, c, 120*time.Second, 3*time.Second, "HTTP 429", "will retry")
			if e.StatusCode != http.StatusTooManyRequests || rcv.Count() != 1 {
				t.Errorf("status %d, %d requests", e.StatusCode, rcv.Count())
			}
		})
	})
}

// TestPlatformCodesEndInTheRightState: each platform's "retry later" and
// "never retry" codes of DESIGN.md, through the worker into history. The
// DingTalk codes -1, 130101 and 310000 are in notify_test.go.
func TestPlatformCodesEndInTheRightState(t *testing.T) {
	t.Parallel()
	type fake interface {
		FailNext(n, code int, msg string)
		Requests() int
	}
	platforms := map[string]func(t *testing.T) (fake, map[string]any){
		"dingtalk": func(t *testing.T) (fake, map[string]any) {
			f := testsupport.NewDingTalk(t, "")
			return f, map[string]any{"type": "dingtalk", "config": map[string]any{"webhook_url": f.WebhookURL()}}
		},
		"feishu": func(t *testing.T) (fake, map[string]any) {
			f := testsupport.NewFeishu(t, "")
			return f, map[string]any{"type": "feishu", "config": map[string]any{"webhook_url": f.WebhookURL()}}
		},
		"wecom robot": func(t *testing.T) (fake, map[string]any) {
			f := testsupport.NewWeCom(t)
			return f, map[string]any{"type": "wechat", "config": map[string]any{"webhook_url": f.WebhookURL()}}
		},
		"wecom app": func(t *testing.T) (fake, map[string]any) {
			f := testsupport.NewWeCom(t)
			return f, map[string]any{"type": "wechat", "config": map[string]any{"corp_id": f.CorpID(), "agent_id": f.AgentID(),
				"secret": f.Secret(), "to_user": "@all", "api_base_url": f.URL()}}
		},
	}
	const (
		retried = iota // pending, then a success on the schedule
		waits          // pending for the platform's own pause
		fails          // failed at once
	)
	tests := []struct {
		platform string
		code     int
		outcome  int
		wait     time.Duration
	}{
		{"dingtalk", 300001, fails, 0},
		{"dingtalk", 300005, fails, 0},
		{"feishu", 11232, retried, 0},
		{"feishu", 19021, fails, 0},
		{"feishu", 19022, fails, 0},
		{"feishu", 19024, fails, 0},
		{"feishu", 9499, fails, 0},
		{"feishu", 19001, fails, 0},
		{"wecom robot", 45009, waits, time.Minute},
		{"wecom robot", -1, retried, 0},
		{"wecom robot", 93000, fails, 0},
		{"wecom robot", 40008, fails, 0},
		{"wecom robot", 44004, fails, 0},
		{"wecom app", 45009, waits, time.Minute},
		{"wecom app", 45033, waits, time.Minute},
		{"wecom app", 40001, fails, 0},
		{"wecom app", 81013, fails, 0},
		{"wecom app", 60020, fails, 0},
	}
	eachDialect(t, func(t *testing.T, env *apptest.Env) {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s %d", tt.platform, tt.code), func(t *testing.T) {
				t.Parallel()
				f, ch := platforms[tt.platform](t)
				f.FailNext(1, tt.code, "the platform says no")
				c := newFaultCase(t, env, ch)
				c.release(t, "v1")
				code := fmt.Sprintf("(%d)", tt.code)
				switch tt.outcome {
				case retried:
					wantRetried(t, c, code, "will retry")
					if f.Requests() != 2 {
						t.Errorf("%d requests, want 2", f.Requests())
					}
				case waits:
					wantPendingFor(t, c, tt.wait, 3*time.Second, code, "will retry")
					if f.Requests() != 1 {
						t.Errorf("%d requests, want 1", f.Requests())
					}
				case fails:
					wantFailedOnce(t, c, code)
					if f.Requests() != 1 {
						t.Errorf("%d requests, want 1", f.Requests())
					}
				}
			})
		}
	})
}
