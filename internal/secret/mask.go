package secret

import (
	"encoding/json"
	"net/url"
	"strings"
)

// Masked is what responses show instead of a secret.
const Masked = "******"

// secretParams are query parameters that carry a credential: robot tokens
// (access_token, key), signatures that are valid for an hour, the WeCom
// corpsecret, and the sig of a Teams workflow URL.
var secretParams = map[string]bool{
	"access_token": true, "key": true, "token": true,
	"sign": true, "secret": true, "corpsecret": true, "sig": true,
}

// tokenInPath matches the webhook URLs whose last path segment is the
// credential: Slack's /services/T…/B…/<token> and Discord's
// /api[/vN]/webhooks/<id>/<token>.
func tokenInPath(path string) bool {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(segs) == 4 && segs[0] == "services":
		return true
	case len(segs) >= 4 && segs[0] == "api" && segs[len(segs)-3] == "webhooks":
		return true
	}
	return false
}

// MaskURL hides the credential part of a robot URL, keeping the rest
// readable for history: the values of access_token, key, token, sign,
// secret, corpsecret and sig, user info, the hook id of Feishu's
// /hook/{uuid}, and the token at the end of Slack and Discord webhook
// paths. A URL that does not parse is masked whole.
func MaskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return Masked
	}
	hadUser := u.User != nil
	u.User = nil
	if u.RawQuery != "" {
		// Rewritten in place rather than re-encoded, so the order as sent
		// (timestamp before sign) stays.
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			k, _, _ := strings.Cut(p, "=")
			name, err := url.QueryUnescape(k)
			if err != nil || secretParams[strings.ToLower(name)] {
				parts[i] = k + "=" + Masked
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	if i := strings.Index(u.Path, "/hook/"); i >= 0 {
		u.Path = u.Path[:i] + "/hook/" + Masked
		u.RawPath = u.Path // '*' is valid in a path; keep it readable
	} else if tokenInPath(u.Path) {
		u.Path = u.Path[:strings.LastIndex(strings.TrimSuffix(u.Path, "/"), "/")] + "/" + Masked
		u.RawPath = u.Path
	}
	u.Fragment, u.RawFragment = "", ""
	out := u.String()
	if hadUser {
		// url.User would escape the asterisks.
		out = strings.Replace(out, "://", "://"+Masked+"@", 1)
	}
	return out
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
