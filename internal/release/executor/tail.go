package executor

import (
	"sync"
	"unicode/utf8"
)

// TailSize is how much output is kept per host (CONTRACT §4: the last 64 KiB).
const TailSize = 64 << 10

// Tail is an io.Writer that keeps only the last TailSize bytes written.
// A deploy script can print without bound (a chatty build, a loop gone
// wrong); what matters for diagnosis is the end, so older bytes are dropped
// rather than the run failing or memory growing. The zero value is ready to
// use and safe for concurrent writers (stdout and stderr copiers).
type Tail struct {
	mu      sync.Mutex
	buf     []byte // grows to TailSize, then is used as a ring
	start   int    // index of the oldest byte once buf is full
	written int64
}

// Write always accepts all of p.
func (t *Tail) Write(p []byte) (int, error) {
	n := len(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.written += int64(n)
	if len(p) >= TailSize {
		// Only the end of p survives; reset the ring around it.
		if cap(t.buf) < TailSize {
			t.buf = make([]byte, TailSize)
		}
		t.buf = t.buf[:TailSize]
		copy(t.buf, p[len(p)-TailSize:])
		t.start = 0
		return n, nil
	}
	if room := TailSize - len(t.buf); room > 0 {
		// Still filling: plain append, no ring arithmetic yet.
		k := min(room, len(p))
		t.buf = append(t.buf, p[:k]...)
		p = p[k:]
	}
	// Full: overwrite the oldest bytes in place, wrapping at most once
	// because len(p) < TailSize here.
	for len(p) > 0 {
		k := copy(t.buf[t.start:], p)
		p = p[k:]
		t.start = (t.start + k) % TailSize
	}
	return n, nil
}

// Bytes returns a copy of the kept output, oldest first. When older output
// was dropped, a UTF-8 character cut in half at the front is dropped too so
// that the text stays valid.
func (t *Tail) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]byte, 0, len(t.buf))
	out = append(out, t.buf[t.start:]...)
	out = append(out, t.buf[:t.start]...)
	if t.written > int64(len(out)) {
		for i := 0; i < utf8.UTFMax-1 && len(out) > 0 && !utf8.RuneStart(out[0]); i++ {
			out = out[1:]
		}
	}
	return out
}

// String returns the kept output as text.
func (t *Tail) String() string { return string(t.Bytes()) }

// Written is the total number of bytes ever written, kept or not.
func (t *Tail) Written() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.written
}

// Truncated reports whether older output was dropped.
func (t *Tail) Truncated() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.written > int64(len(t.buf))
}
