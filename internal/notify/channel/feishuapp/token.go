package feishuapp

import (
	"context"
	"sync"
	"time"

	"github.com/herald-release/herald/internal/notify/channel"
)

// Feishu asks callers to cache tenant_access_token rather than fetch one
// per call (the token endpoint is rate limited too), so every sender of one
// app shares one token: cached for the process, fetched by one caller at a
// time while the others wait for its result. This mirrors the WeCom
// application's cache in package wechat.

// tokenFetcher calls tenant_access_token/internal. The Attempt is what
// history shows when the fetch fails (the send never happened).
type tokenFetcher func(ctx context.Context) (token string, ttl time.Duration, att channel.Attempt, err error)

// tokenCache holds one entry per app (API base, app id, secret).
type tokenCache struct {
	mu      sync.Mutex
	entries map[string]*tokenEntry
}

var tokens = &tokenCache{entries: map[string]*tokenEntry{}}

func (c *tokenCache) entry(key string) *tokenEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil {
		e = &tokenEntry{}
		c.entries[key] = e
	}
	return e
}

type tokenEntry struct {
	mu        sync.Mutex
	token     string
	refreshAt time.Time // fetch a new one from here on
	expiresAt time.Time // Feishu stops accepting it here
	inflight  *tokenFetch
}

type tokenFetch struct {
	done  chan struct{}
	token string
	att   channel.Attempt
	err   error
}

// defaultTTL is the endpoint's usual "expire", used when it says nothing.
const defaultTTL = 7200 * time.Second

// fetchTimeout bounds a fetch, which runs detached from the caller that
// started it so that its cancellation does not fail every waiter.
const fetchTimeout = channel.DefaultTimeout

// refreshMargin is how long before expiry a token is replaced, so a
// message never leaves with a token that dies on the way. Feishu hands
// out a new token once the old one has under 30 minutes left, so a fetch
// inside the margin gets a fresh one.
func refreshMargin(ttl time.Duration) time.Duration {
	return min(5*time.Minute, ttl/4)
}

// get returns a usable token: the cached one unless it is due for refresh
// or is stale (Feishu just refused it as invalid), else the result of one
// shared fetch.
func (e *tokenEntry) get(ctx context.Context, now func() time.Time, stale string, fetch tokenFetcher) (string, channel.Attempt, error) {
	e.mu.Lock()
	if e.token != "" && e.token != stale && now().Before(e.refreshAt) {
		tok := e.token
		e.mu.Unlock()
		return tok, channel.Attempt{}, nil
	}
	f := e.inflight
	if f == nil {
		f = &tokenFetch{done: make(chan struct{})}
		e.inflight = f
		go e.run(context.WithoutCancel(ctx), now, f, fetch)
	}
	e.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
		return "", channel.Attempt{}, channel.Temporary(0, "feishu_app: waiting for a tenant_access_token: %v", ctx.Err())
	}
	if f.err != nil {
		// A failed early refresh need not fail the send: the old token
		// still has some minutes to live.
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.token != "" && e.token != stale && now().Before(e.expiresAt) {
			return e.token, channel.Attempt{}, nil
		}
	}
	return f.token, f.att, f.err
}

func (e *tokenEntry) run(ctx context.Context, now func() time.Time, f *tokenFetch, fetch tokenFetcher) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	tok, ttl, att, err := fetch(ctx)
	if ttl <= 0 {
		ttl = defaultTTL
	}
	e.mu.Lock()
	if err == nil {
		t := now()
		e.token, e.expiresAt, e.refreshAt = tok, t.Add(ttl), t.Add(ttl-refreshMargin(ttl))
	}
	e.inflight = nil
	e.mu.Unlock()
	f.token, f.att, f.err = tok, att, err
	close(f.done)
}
