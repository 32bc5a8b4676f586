// Package page implements the list conventions of CONTRACT §2:
// ?limit= (default 50, max 500) and an opaque ?cursor=.
package page

import (
	"encoding/base64"
	"net/url"
	"strconv"

	"github.com/herald-release/herald/internal/validate"
)

const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Params are a list request's paging parameters. After is the decoded
// cursor: the sort key of the last item of the previous page.
type Params struct {
	Limit int
	After string
}

// Parse reads limit and cursor from a query string.
func Parse(q url.Values) (Params, error) {
	p := Params{Limit: DefaultLimit}
	var errs validate.Errors
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil:
			errs.Add("limit", "must be a whole number")
		case n < 1 || n > MaxLimit:
			errs.Add("limit", "must be between 1 and %d", MaxLimit)
		default:
			p.Limit = n
		}
	}
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil {
			errs.Add("cursor", "is not a cursor this server gave out; start again without it")
		} else {
			p.After = string(b)
		}
	}
	return p, errs.Err()
}

// Cursor encodes a sort key as a cursor.
func Cursor(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

// Page is one page of a list.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// Make builds a page from up to Limit+1 fetched items: the extra one only
// tells that there is more.
func Make[T any](items []T, p Params, key func(T) string) Page[T] {
	out := Page[T]{Items: items}
	if out.Items == nil {
		out.Items = []T{}
	}
	if len(items) > p.Limit {
		out.Items = items[:p.Limit]
		out.NextCursor = Cursor(key(out.Items[p.Limit-1]))
	}
	return out
}
