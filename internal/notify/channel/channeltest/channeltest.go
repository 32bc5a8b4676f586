// Package channeltest holds the checks the channel packages' tests share.
package channeltest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/notify/channel"
)

// Sender builds k's sender for cfg after validating it, as the API does
// when the config is saved; a refused config fails the test.
func Sender(t testing.TB, k channel.Kind, cfg map[string]any, d channel.Deps) channel.Sender {
	t.Helper()
	raw, _ := json.Marshal(cfg)
	if errs := k.Validate(raw, d); len(errs) > 0 {
		t.Fatalf("valid config refused: %v", errs)
	}
	s, err := k.New(raw, d)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// AssertNoSecret fails when a secret shows in what history or logs keep:
// the attempt as recorded, or the error. Empty secrets are skipped.
func AssertNoSecret(t testing.TB, att channel.Attempt, err error, secrets ...string) {
	t.Helper()
	rec, _ := json.Marshal(att)
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(string(rec), s) {
			t.Errorf("secret %q in the attempt: %s", s, rec)
		}
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("secret %q in the error: %v", s, err)
		}
	}
}

// AsError returns err as the *channel.Error the worker classifies, and
// fails the test when it is not one.
func AsError(t testing.TB, err error) *channel.Error {
	t.Helper()
	var ce *channel.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *channel.Error", err, err)
	}
	return ce
}
