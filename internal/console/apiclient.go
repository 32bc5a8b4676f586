package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/herald-release/herald/internal/api"
	"github.com/herald-release/herald/internal/apperr"
)

// FieldError is one entry of an API error's details.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// APIError is an API answer of 4xx or 5xx, as CONTRACT §2 shapes it.
type APIError struct {
	Status    int
	Code      string       `json:"code"`
	Message   string       `json:"message"`
	Details   []FieldError `json:"details"`
	RequestID string       `json:"request_id"`
}

func (e *APIError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func isStatus(err error, status int) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status == status
	}
	if e := apperr.From(err); e != nil {
		return e.Status == status
	}
	return false
}

// noRoute tells that the API has no such route (yet): a part of Herald
// that this build does not have.
func noRoute(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound && strings.HasPrefix(ae.Message, "no route ")
}

// recorder is a minimal in-memory ResponseWriter for in-process calls.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

// call runs one API request in-process as the request's user: the session
// cookie authenticates it, and writes carry the session's CSRF token, so
// the API applies its auth, role and CSRF rules as to any browser call.
func (q *request) call(ctx context.Context, method, path string, in any) (int, []byte, error) {
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, body)
	if err != nil {
		return 0, nil, err
	}
	req.RequestURI = path
	req.RemoteAddr = q.r.RemoteAddr
	req.Host = q.r.Host
	req.TLS = q.r.TLS
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if rid := api.RequestID(q.r.Context()); rid != "" {
		req.Header.Set("X-Request-Id", rid)
	}
	if q.sess != nil {
		req.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: q.sid})
		if method != http.MethodGet && method != http.MethodHead {
			req.Header.Set(api.CSRFHeader, q.sess.CSRFToken)
		}
	}
	rec := &recorder{header: http.Header{}}
	q.c.deps.API.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec.status, rec.body.Bytes(), nil
}

// api calls the API and decodes a 2xx answer into out (when not nil); a
// 4xx/5xx answer comes back as *APIError.
func (q *request) api(method, path string, in, out any) error {
	status, body, err := q.call(q.r.Context(), method, path, in)
	if err != nil {
		return err
	}
	if status >= 400 {
		var eb struct {
			Error APIError `json:"error"`
		}
		if json.Unmarshal(body, &eb) != nil || eb.Error.Message == "" {
			eb.Error.Message = strings.TrimSpace(string(body))
			if eb.Error.Message == "" {
				eb.Error.Message = http.StatusText(status)
			}
		}
		eb.Error.Status = status
		return &eb.Error
	}
	if out != nil && len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return nil
}

func (q *request) get(path string, out any) error { return q.api(http.MethodGet, path, nil, out) }

// list is a page of a list (CONTRACT §2).
type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// next links to the console page after this one, with the same filter;
// "" on the last page.
func (l list[T]) next(page string, filter url.Values) string {
	if l.NextCursor == "" {
		return ""
	}
	return page + "?" + withCursor(filter, l.NextCursor).Encode()
}

// filterOf reads a list page's filter inputs: the keys, trimmed, the empty
// ones left out.
func filterOf(in url.Values, keys ...string) url.Values {
	filter := url.Values{}
	for _, k := range keys {
		if v := strings.TrimSpace(in.Get(k)); v != "" {
			filter.Set(k, v)
		}
	}
	return filter
}

// withCursor is a copy of filter with the page's cursor, if any.
func withCursor(filter url.Values, cursor string) url.Values {
	v := url.Values{}
	for k, vals := range filter {
		v[k] = vals
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	return v
}

// withQuery adds non-empty parameters to path.
func withQuery(path string, kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}
