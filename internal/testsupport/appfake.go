package testsupport

import "net/http"

// appFake is what the fakes of app APIs (a Feishu app, a WeCom
// application) add to robotFake: the access tokens they issue, the token
// calls and their scripted failures. V is what a fake keeps of an issued
// token (its expiry, whether it is still valid); revoking a token sets it
// to V's zero value. robotFake.mu guards it all.
type appFake[M, V any] struct {
	robotFake[M]
	tokens      map[string]V // issued token → its state
	current     string       // what a token call hands out while it is valid
	tokenCalls  int
	tokenScript []robotFailure
}

func newAppFake[M, V any](name string, answer func(w http.ResponseWriter, code int, msg string)) appFake[M, V] {
	return appFake[M, V]{robotFake: newRobotFake[M](name, answer), tokens: map[string]V{}}
}

// TokenRequests counts the token calls, answered or refused.
func (a *appFake[M, V]) TokenRequests() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tokenCalls
}

// AccessTokens lists every token issued, for leak checks.
func (a *appFake[M, V]) AccessTokens() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.tokens))
	for t := range a.tokens {
		out = append(out, t)
	}
	return out
}

// FailNextToken makes the next n token calls answer the platform's error
// code with msg.
func (a *appFake[M, V]) FailNextToken(n, code int, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for range n {
		a.tokenScript = append(a.tokenScript, robotFailure{code: code, msg: msg})
	}
}

// revokeTokens invalidates every token issued so far; the next token call
// issues a new one.
func (a *appFake[M, V]) revokeTokens() {
	a.mu.Lock()
	defer a.mu.Unlock()
	var revoked V
	for t := range a.tokens {
		a.tokens[t] = revoked
	}
	a.current = ""
}

// beginToken counts a token call and answers the next scripted failure,
// if any, telling whether it did; mu is held.
func (a *appFake[M, V]) beginToken(w http.ResponseWriter) bool {
	a.tokenCalls++
	return a.scripted(w, &a.tokenScript)
}
