package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

func (c *Console) funcs() template.FuncMap {
	return template.FuncMap{
		"fid":  fieldID,
		"time": timeText,
		"dict": func(kv ...any) (map[string]any, error) {
			if len(kv)%2 != 0 {
				return nil, fmt.Errorf("dict: odd number of arguments")
			}
			m := make(map[string]any, len(kv)/2)
			for i := 0; i < len(kv); i += 2 {
				k, ok := kv[i].(string)
				if !ok {
					return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
				}
				m[k] = kv[i+1]
			}
			return m, nil
		},
		"list":    func(v ...any) []any { return v },
		"append1": func(l []any, v any) []any { return append(l, v) },
		"opt":     func(value, label string) option { return option{value, label} },
		"pretty": func(raw any) string {
			var b []byte
			switch v := raw.(type) {
			case json.RawMessage:
				b = v
			case []byte:
				b = v
			case string:
				b = []byte(v)
			default:
				b, _ = json.Marshal(v)
			}
			var out bytes.Buffer
			if json.Indent(&out, b, "", "  ") != nil {
				return string(b)
			}
			return out.String()
		},
		"reqText":  prettyRequest,
		"inTime":   inputTime,
		"pathEsc":  url.PathEscape,
		"queryEsc": url.QueryEscape,
		"langURL":  langSwitchURL,
		"has":      func(list []string, s string) bool { return slices.Contains(list, s) },
		"add":      func(a, b int) int { return a + b },
		"lower":    strings.ToLower,
		"join":     strings.Join,
		"str":      toString,
		"nz": func(n int) string {
			if n == 0 {
				return ""
			}
			return strconv.Itoa(n)
		},
		"deref": func(p *int) any {
			if p == nil {
				return ""
			}
			return *p
		},
	}
}

type option struct{ Value, Label string }

// parseTemplates builds one template set per page: the layout and
// partials, plus the page's "content".
func parseTemplates(funcs template.FuncMap) map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/_*.html"))
	pages := map[string]*template.Template{}
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if strings.HasPrefix(name, "_") {
			continue
		}
		pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, f))
	}
	return pages
}
