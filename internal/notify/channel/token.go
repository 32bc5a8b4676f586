package channel

import (
	"context"
	"sync"
	"time"
)

// TokenCache keeps the access tokens of platform apps (a WeCom
// application, a Feishu app) for the process. Platforms limit how often a
// token may be fetched and ask callers to cache it, so every sender of one
// app shares one token: cached until it is due for refresh, fetched by one
// caller at a time while the others wait for its result. Which answers
// mean "this token is no longer valid" is the platform's business: its
// sender passes the refused token back as stale.
type TokenCache struct {
	waiting string
	mu      sync.Mutex
	entries map[string]*tokenEntry
}

// TokenFetcher fetches a token and how long it lives (zero or less:
// DefaultTokenTTL). The Attempt is what history shows when the fetch fails
// (the send never happened).
type TokenFetcher func(ctx context.Context) (token string, ttl time.Duration, att Attempt, err error)

// NewTokenCache returns an empty cache. waiting begins the error of a
// caller whose context ends while it waits for a fetch: "wechat: waiting
// for an access token".
func NewTokenCache(waiting string) *TokenCache {
	return &TokenCache{waiting: waiting, entries: map[string]*tokenEntry{}}
}

// DefaultTokenTTL is a token's lifetime when the fetch does not say: the
// usual expires_in (WeCom) and expire (Feishu).
const DefaultTokenTTL = 7200 * time.Second

// tokenFetchTimeout bounds a fetch, which runs detached from the caller
// that started it so that its cancellation does not fail every waiter.
const tokenFetchTimeout = DefaultTimeout

// tokenRefreshMargin is how long before expiry a token is replaced, so a
// message never leaves with a token that dies on the way.
func tokenRefreshMargin(ttl time.Duration) time.Duration {
	return min(5*time.Minute, ttl/4)
}

type tokenEntry struct {
	mu        sync.Mutex
	token     string
	refreshAt time.Time // fetch a new one from here on
	expiresAt time.Time // the platform stops accepting it here
	inflight  *tokenFetch
}

type tokenFetch struct {
	done  chan struct{}
	token string
	att   Attempt
	err   error
}

func (c *TokenCache) entry(key string) *tokenEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil {
		e = &tokenEntry{}
		c.entries[key] = e
	}
	return e
}

// Get returns a usable token for key (one app: its API base, id and a hash
// of its secret): the cached one unless it is due for refresh by now or is
// stale (the platform just refused it; "" when none was), else the result
// of one shared fetch. The Attempt is the failed fetch's, for history.
func (c *TokenCache) Get(ctx context.Context, key string, now func() time.Time, stale string, fetch TokenFetcher) (string, Attempt, error) {
	e := c.entry(key)
	e.mu.Lock()
	if e.token != "" && e.token != stale && now().Before(e.refreshAt) {
		tok := e.token
		e.mu.Unlock()
		return tok, Attempt{}, nil
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
		return "", Attempt{}, Temporary(0, "%s: %v", c.waiting, ctx.Err())
	}
	if f.err != nil {
		// A failed early refresh need not fail the send: the old token
		// still has some minutes to live.
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.token != "" && e.token != stale && now().Before(e.expiresAt) {
			return e.token, Attempt{}, nil
		}
	}
	return f.token, f.att, f.err
}

func (e *tokenEntry) run(ctx context.Context, now func() time.Time, f *tokenFetch, fetch TokenFetcher) {
	ctx, cancel := context.WithTimeout(ctx, tokenFetchTimeout)
	defer cancel()
	tok, ttl, att, err := fetch(ctx)
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	e.mu.Lock()
	if err == nil {
		t := now()
		e.token, e.expiresAt, e.refreshAt = tok, t.Add(ttl), t.Add(ttl-tokenRefreshMargin(ttl))
	}
	e.inflight = nil
	e.mu.Unlock()
	f.token, f.att, f.err = tok, att, err
	close(f.done)
}
