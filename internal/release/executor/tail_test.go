package executor_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/herald-release/herald/internal/release/executor"
)

func TestTailKeepsLast64KiB(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		writes []string
	}{
		{"empty", nil},
		{"small", []string{"hello ", "world"}},
		{"exactly full", []string{strings.Repeat("a", executor.TailSize)}},
		{"one big write", []string{strings.Repeat("x", 3*executor.TailSize+7) + "END"}},
		{"fill then wrap", []string{strings.Repeat("a", executor.TailSize-3), "bcdefg", "hij"}},
		{"many small writes", repeatWrites("0123456789abcdef\n", 20000)},
		{"big after wrap", []string{strings.Repeat("a", executor.TailSize+100), "b", strings.Repeat("c", executor.TailSize-1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var tail executor.Tail
			var all bytes.Buffer
			for _, w := range tt.writes {
				n, err := tail.Write([]byte(w))
				if err != nil || n != len(w) {
					t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(w))
				}
				all.WriteString(w)
			}
			want := all.Bytes()
			if len(want) > executor.TailSize {
				want = want[len(want)-executor.TailSize:]
			}
			if got := tail.Bytes(); !bytes.Equal(got, want) {
				t.Fatalf("Bytes: got %d bytes ending %q, want %d ending %q", len(got), end(got), len(want), end(want))
			}
			if tail.String() != string(want) {
				t.Fatal("String differs from Bytes")
			}
			if tail.Written() != int64(all.Len()) {
				t.Fatalf("Written = %d, want %d", tail.Written(), all.Len())
			}
			if tail.Truncated() != (all.Len() > executor.TailSize) {
				t.Fatalf("Truncated = %v with %d bytes written", tail.Truncated(), all.Len())
			}
		})
	}
}

func TestTailDropsHalfCharacterAtCut(t *testing.T) {
	t.Parallel()
	var tail executor.Tail
	// "é" is two bytes; an odd filler length leaves the cut inside one.
	tail.Write([]byte(strings.Repeat("é", executor.TailSize)))
	tail.Write([]byte("z"))
	got := tail.String()
	if !strings.HasPrefix(got, "é") || !strings.HasSuffix(got, "éz") {
		t.Fatalf("tail starts %q, ends %q", got[:4], end([]byte(got)))
	}
	if len(got) != executor.TailSize-1 {
		t.Fatalf("len = %d, want %d (one continuation byte dropped)", len(got), executor.TailSize-1)
	}
}

func TestTailConcurrentWriters(t *testing.T) {
	t.Parallel()
	var tail executor.Tail
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			line := []byte(strings.Repeat(string(rune('a'+i)), 99) + "\n")
			for range 500 {
				tail.Write(line)
			}
		})
	}
	wg.Wait()
	if tail.Written() != 8*500*100 {
		t.Fatalf("Written = %d", tail.Written())
	}
	// Writes are atomic: every kept line but the first (cut) is whole.
	lines := strings.Split(strings.TrimSuffix(tail.String(), "\n"), "\n")
	for _, l := range lines[1:] {
		if len(l) != 99 || strings.Count(l, l[:1]) != 99 {
			t.Fatalf("interleaved line %q", l)
		}
	}
}

func repeatWrites(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func end(b []byte) string {
	if len(b) > 16 {
		b = b[len(b)-16:]
	}
	return string(b)
}
