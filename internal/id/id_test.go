package id

import (
	"sort"
	"strings"
	"testing"
)

func TestNewIsOrderedAndUnique(t *testing.T) {
	t.Parallel()
	const n = 10000
	ids := make([]string, n)
	seen := make(map[string]bool, n)
	for i := range ids {
		ids[i] = New("evt")
		if seen[ids[i]] {
			t.Fatalf("duplicate id %s", ids[i])
		}
		seen[ids[i]] = true
		if !strings.HasPrefix(ids[i], "evt_") || len(ids[i]) != 30 {
			t.Fatalf("malformed id %q", ids[i])
		}
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("ids created in sequence do not sort in creation order")
	}
}
