package channel_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/notify/channel"
)

// counter is a TokenFetcher that hands out "tok1", "tok2", … living ttl,
// after release is closed (nil: at once).
type counter struct {
	calls   atomic.Int64
	ttl     time.Duration
	release chan struct{}
	fail    atomic.Bool
	// started, when set, is closed as the first fetch begins.
	started chan struct{}
	once    sync.Once
}

func (c *counter) fetch(ctx context.Context) (string, time.Duration, channel.Attempt, error) {
	n := c.calls.Add(1)
	if c.started != nil {
		c.once.Do(func() { close(c.started) })
	}
	if c.release != nil {
		<-c.release
	}
	if c.fail.Load() {
		return "", 0, channel.Attempt{StatusCode: 500}, channel.Temporary(0, "fetch failed")
	}
	return fmt.Sprint("tok", n), c.ttl, channel.Attempt{}, nil
}

func TestTokenCacheOneFetchAtATime(t *testing.T) {
	t.Parallel()
	cache := channel.NewTokenCache("test: waiting for a token")
	c := &counter{ttl: time.Hour, release: make(chan struct{}), started: make(chan struct{})}
	var wg sync.WaitGroup
	got := make([]string, 10)
	get := func(i int) {
		tok, _, err := cache.Get(context.Background(), "app", time.Now, "", c.fetch)
		if err != nil {
			t.Error(err)
		}
		got[i] = tok
	}
	// The first caller's fetch is held; the others come while it runs,
	// when there is no token yet, and must wait for it, not fetch again.
	wg.Go(func() { get(0) })
	<-c.started
	for i := 1; i < len(got); i++ {
		wg.Go(func() { get(i) })
	}
	close(c.release)
	wg.Wait()
	for _, tok := range got {
		if tok != "tok1" {
			t.Errorf("got %q, want tok1 for every caller", tok)
		}
	}
	if n := c.calls.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
	// A token the platform refused is fetched again; another key has its own.
	if tok, _, _ := cache.Get(context.Background(), "app", time.Now, "tok1", c.fetch); tok != "tok2" {
		t.Errorf("after a refusal: %q, want tok2", tok)
	}
	if tok, _, _ := cache.Get(context.Background(), "other", time.Now, "", c.fetch); tok != "tok3" {
		t.Errorf("another key: %q, want tok3", tok)
	}
}

func TestTokenCacheRefresh(t *testing.T) {
	t.Parallel()
	cache := channel.NewTokenCache("test: waiting for a token")
	c := &counter{} // no TTL: DefaultTokenTTL
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	get := func() (string, channel.Attempt, error) {
		return cache.Get(context.Background(), "app", now, "", c.fetch)
	}
	if tok, _, _ := get(); tok != "tok1" {
		t.Fatalf("got %q", tok)
	}
	offset.Store(int64(channel.DefaultTokenTTL - 10*time.Minute))
	if tok, _, _ := get(); tok != "tok1" || c.calls.Load() != 1 {
		t.Fatalf("got %q after %d fetches, want the cached tok1", tok, c.calls.Load())
	}
	// Inside the refresh margin a failed fetch keeps the old token, which
	// still lives...
	offset.Store(int64(channel.DefaultTokenTTL - time.Minute))
	c.fail.Store(true)
	if tok, _, err := get(); tok != "tok1" || err != nil {
		t.Fatalf("failed early refresh: %q, %v; want tok1", tok, err)
	}
	// ...until it expires: then the fetch's failure is the answer.
	offset.Store(int64(channel.DefaultTokenTTL + time.Minute))
	if _, att, err := get(); err == nil || att.StatusCode != 500 {
		t.Fatalf("expired token, failed fetch: %v, %+v", err, att)
	}
	c.fail.Store(false)
	if tok, _, err := get(); err != nil || tok != "tok4" {
		t.Fatalf("got %q, %v; want tok4", tok, err)
	}
}

func TestTokenCacheWaiterGivesUp(t *testing.T) {
	t.Parallel()
	cache := channel.NewTokenCache("test: waiting for a token")
	c := &counter{ttl: time.Hour, release: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, _, err := cache.Get(ctx, "app", time.Now, "", c.fetch)
	var ce *channel.Error
	if !errors.As(err, &ce) || !ce.Retry || !strings.HasPrefix(err.Error(), "test: waiting for a token: ") {
		t.Fatalf("err = %v, want a retryable waiting error", err)
	}
	// The fetch was not cancelled with its caller: the next one gets its
	// token without another fetch.
	close(c.release)
	if tok, _, err := cache.Get(context.Background(), "app", time.Now, "", c.fetch); tok != "tok1" || err != nil || c.calls.Load() != 1 {
		t.Errorf("got %q, %v after %d fetches; want tok1 from the first fetch", tok, err, c.calls.Load())
	}
}
