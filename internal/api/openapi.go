package api

import (
	"bytes"
	_ "embed"
	"net/http"
	"time"
)

// openAPIDoc is the OpenAPI 3.1 description of every route in Routes that
// is part of the API (under /api/, health and metrics), kept by hand next
// to the handlers. TestOpenAPIDescribesEveryRoute fails when a route is
// added, removed or renamed without it, and checks real answers against
// its schemas.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3.1 description of the API.
func OpenAPI() []byte { return bytes.Clone(openAPIDoc) }

// OpenAPIHandler serves the description, without authentication, to any
// origin (it is public, and tools such as Swagger UI fetch it cross-site).
func OpenAPIHandler() http.Handler {
	modified := time.Now()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "openapi.json", modified, bytes.NewReader(openAPIDoc))
	})
}
