package notify

import (
	"math/rand/v2"
	"sync"
	"time"
)

// breaker keeps one broken endpoint from taking every delivery worker.
//
// An endpoint alone gets every worker its deliveries need; while others
// are busy too, no endpoint holds more than its fair share, so one
// that hangs until its timeout can only ever hold that share, even before
// its first failure is known. Once it fails to answer (a network error, a
// timeout) it may have at most perTarget attempts in flight, and after
// tripAfter such failures in a row its circuit opens: its deliveries wait
// (not attempted, not counted) until the circuit half-opens, when
// perTarget probes may go; one more failure reopens it for twice as long,
// one success heals it.
type breaker struct {
	mu        sync.Mutex
	now       func() time.Time
	workers   int
	perTarget int
	targets   map[string]*targetState // the endpoints with attempts in flight or failures
	active    int                     // how many of them have attempts in flight
}

type targetState struct {
	inFlight  int
	failures  int // consecutive network failures and timeouts
	openUntil time.Time
	opened    int // how many times in a row the circuit opened: the cooldown doubles
}

const (
	tripAfter    = 5
	baseCooldown = 15 * time.Second
	maxCooldown  = 5 * time.Minute
)

func newBreaker(workers int, now func() time.Time) *breaker {
	return &breaker{now: now, workers: workers, perTarget: max(2, workers/25), targets: map[string]*targetState{}}
}

// acquire returns 0 when an attempt may start now (and must be released),
// or how long to wait.
func (b *breaker) acquire(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.targets[key]
	if s == nil {
		s = &targetState{}
		b.targets[key] = s
	}
	now := b.now()
	if now.Before(s.openUntil) {
		return jitter(s.openUntil.Sub(now))
	}
	if s.failures > 0 && s.inFlight >= b.perTarget {
		if s.opened > 0 {
			// Half-open: the probes decide; the rest wait a whole
			// cooldown rather than coming back every second.
			return jitter(b.cooldown(s.opened - 1))
		}
		return jitter(time.Second)
	}
	if b.active > 1 && s.inFlight >= max(b.perTarget, b.workers/b.active) {
		return jitter(time.Second)
	}
	if s.inFlight == 0 {
		b.active++
	}
	s.inFlight++
	return 0
}

// abandon ends an attempt that never reached the endpoint (held back by a
// rate limit, or by shutdown): it says nothing of the endpoint's health.
func (b *breaker) abandon(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.targets[key]
	if s == nil {
		return
	}
	s.inFlight--
	if s.inFlight == 0 {
		b.active--
		if s.failures == 0 && !b.now().Before(s.openUntil) {
			delete(b.targets, key)
		}
	}
}

// release ends an attempt; unreachable tells that it failed without an
// answer from the endpoint (network error, timeout). When this failure
// opened the circuit, release returns until when it is open.
func (b *breaker) release(key string, unreachable bool) (openedUntil time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.targets[key]
	if s == nil {
		return time.Time{}
	}
	s.inFlight--
	if s.inFlight == 0 {
		b.active--
	}
	if !unreachable {
		s.failures, s.opened = 0, 0
		if s.inFlight == 0 {
			delete(b.targets, key)
		}
		return time.Time{}
	}
	s.failures++
	if s.failures >= tripAfter && !b.now().Before(s.openUntil) {
		s.openUntil = b.now().Add(b.cooldown(s.opened))
		s.opened++
		return s.openUntil
	}
	return time.Time{}
}

// cooldown is how long the circuit stays open the n-th time in a row.
func (b *breaker) cooldown(n int) time.Duration {
	return min(baseCooldown<<min(n, 5), maxCooldown)
}

// jitter spreads waits by ±20% so that snoozed deliveries do not return
// all at once.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
