package notify

import (
	"testing"
	"time"
)

func TestBreakerCapsAFailingEndpointAndOpensAfterFiveFailures(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
	b := newBreaker(100, func() time.Time { return now })

	// A healthy endpoint is not capped.
	for range 50 {
		if w := b.acquire("ok"); w != 0 {
			t.Fatalf("healthy endpoint made to wait %v", w)
		}
	}
	for range 50 {
		b.release("ok", false)
	}

	// After one failure only perTarget attempts may be in flight.
	if b.acquire("bad") != 0 {
		t.Fatal("first attempt refused")
	}
	b.release("bad", true)
	for i := range b.perTarget {
		if w := b.acquire("bad"); w != 0 {
			t.Fatalf("attempt %d of a failing endpoint refused", i)
		}
	}
	if b.acquire("bad") == 0 {
		t.Fatal("a failing endpoint got more than perTarget attempts in flight")
	}
	for range b.perTarget {
		b.release("bad", true)
	}
	// Five failures in a row: the circuit is open for the cooldown.
	w := b.acquire("bad")
	if w < baseCooldown*8/10 || w > baseCooldown*12/10 {
		t.Fatalf("open circuit wait %v, want about %v", w, baseCooldown)
	}
	// Half-open after the cooldown: a probe goes, fails, and the circuit
	// reopens for twice as long.
	now = now.Add(baseCooldown + time.Second)
	if b.acquire("bad") != 0 {
		t.Fatal("no probe after the cooldown")
	}
	b.release("bad", true)
	if w := b.acquire("bad"); w < 2*baseCooldown*8/10 {
		t.Fatalf("reopened circuit wait %v, want about %v", w, 2*baseCooldown)
	}
	// A success heals it.
	now = now.Add(time.Hour)
	if b.acquire("bad") != 0 {
		t.Fatal("no probe after the second cooldown")
	}
	b.release("bad", false)
	for range 10 {
		if b.acquire("bad") != 0 {
			t.Fatal("a healed endpoint is still capped")
		}
	}
}

func TestBreakerKeepsAHangingEndpointToItsShareBeforeItFails(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
	b := newBreaker(100, func() time.Time { return now })

	// Alone, an endpoint may use every worker.
	for i := range 100 {
		if w := b.acquire("alone"); w != 0 {
			t.Fatalf("attempt %d of the only busy endpoint made to wait %v", i, w)
		}
	}
	for range 100 {
		b.release("alone", false)
	}

	// Ten endpoints busy at once: one that hangs (its attempts never
	// end) stops at its fair share, leaving the rest to the others.
	for i := range 9 {
		if b.acquire(string(rune('a'+i))) != 0 {
			t.Fatal("a healthy endpoint was refused")
		}
	}
	held := 0
	for b.acquire("hangs") == 0 {
		held++
		if held > 100 {
			t.Fatal("the hanging endpoint took every worker")
		}
	}
	if want := 100 / 10; held != want {
		t.Fatalf("the hanging endpoint holds %d workers, want %d (its share of 10)", held, want)
	}
	// The healthy ones still get theirs.
	for i := range 9 {
		if w := b.acquire(string(rune('a' + i))); w != 0 {
			t.Fatalf("healthy endpoint %d made to wait %v while another hangs", i, w)
		}
	}
}

func TestBreakerIsNotHealedByAttemptsThatNeverHappened(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
	b := newBreaker(100, func() time.Time { return now })
	for range tripAfter {
		if b.acquire("dead") != 0 {
			t.Fatal("attempt refused before the circuit opened")
		}
		b.release("dead", true)
	}
	now = now.Add(maxCooldown) // half-open
	if b.acquire("dead") != 0 {
		t.Fatal("the half-open probe was refused")
	}
	b.abandon("dead") // the probe was held back by a rate limit
	allowed := 0
	for b.acquire("dead") == 0 {
		allowed++
		if allowed > 50 {
			break
		}
	}
	if allowed > b.perTarget {
		t.Fatalf("%d attempts let through after an abandoned probe; the circuit was healed by an attempt that never happened", allowed)
	}
}

func TestStorableFitsBothDatabases(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"plain", "plain"},
		{"nul\x00byte", "nulbyte"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{"héllo", "h"}, // cut inside é: the whole character goes
	}
	for _, c := range cases {
		max := 100
		if c.want == "h" {
			max = 2
		}
		if got := storable(c.in, max); got != c.want {
			t.Errorf("storable(%q, %d) = %q, want %q", c.in, max, got, c.want)
		}
	}
}
