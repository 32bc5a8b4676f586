package secret

import (
	"encoding/json"
	"net/url"
	"strings"
)

// Masked is what responses show instead of a secret.
const Masked = "******"

// tokenParams are query parameters that carry a robot's credential.
var tokenParams = []string{"access_token", "key", "token", "sign", "secret"}

// MaskURL hides the credential part of a webhook URL: token query values,
// the user info, and the hook id of Feishu-style /hook/{id} paths.
func MaskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return Masked
	}
	if u.User != nil {
		u.User = url.User(Masked)
	}
	q := u.Query()
	changed := false
	for _, p := range tokenParams {
		if q.Has(p) {
			q.Set(p, Masked)
			changed = true
		}
	}
	if changed {
		u.RawQuery = strings.ReplaceAll(q.Encode(), url.QueryEscape(Masked), Masked)
	}
	if i := strings.Index(u.Path, "/hook/"); i >= 0 {
		u.Path = u.Path[:i] + "/hook/" + Masked
		u.RawPath = u.Path // '*' is valid in a path; keep it readable
	}
	return u.String()
}

// IsMasked tells whether a value sent back by a client is the mask, meaning
// "keep what is stored".
func IsMasked(v string) bool {
	return v == Masked || strings.Contains(v, Masked)
}

// MaskFields replaces the named top-level fields of a JSON object: URL-like
// values with MaskURL, others with Masked. Absent and empty fields stay.
func MaskFields(obj map[string]any, fields []string) {
	for _, f := range fields {
		v, ok := obj[f]
		if !ok {
			continue
		}
		s, isString := v.(string)
		switch {
		case isString && s == "":
		case isString && (strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")):
			obj[f] = MaskURL(s)
		default:
			obj[f] = Masked
		}
	}
}

// KeepMasked copies into next every named field whose value the client sent
// back masked, from prev: a PUT of what GET showed changes no secret.
func KeepMasked(next, prev map[string]any, fields []string) {
	for _, f := range fields {
		if s, ok := next[f].(string); ok && IsMasked(s) {
			if old, ok := prev[f]; ok {
				next[f] = old
			}
		}
	}
}

// MaskJSON masks the fields of a JSON object and returns it re-encoded;
// anything not an object comes back unchanged.
func MaskJSON(raw []byte, fields []string) json.RawMessage {
	var obj map[string]any
	if json.Unmarshal(raw, &obj) != nil {
		return raw
	}
	MaskFields(obj, fields)
	b, _ := json.Marshal(obj)
	return b
}
