package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// langCookie remembers the language chosen with the switch.
const langCookie = "herald_lang"

// Lang is one language's messages.
type Lang struct {
	// Code is "en" or "zh"; Tag is the HTML lang attribute.
	Code, Tag, Name string
	msgs            map[string]string
	js              string
}

// jsPrefixes are the message families the scripts need.
var jsPrefixes = []string{"js.", "status.", "phase.", "event.", "ch.type.", "type.", "strategy."}

var catalogs = func() map[string]*Lang {
	en := &Lang{Code: "en", Tag: "en", Name: "English", msgs: map[string]string{}}
	zh := &Lang{Code: "zh", Tag: "zh-CN", Name: "中文", msgs: map[string]string{}}
	for _, m := range messages {
		en.msgs[m[0]] = m[1]
		zh.msgs[m[0]] = m[2]
	}
	for _, l := range []*Lang{en, zh} {
		js := map[string]string{}
		for k, v := range l.msgs {
			for _, p := range jsPrefixes {
				if strings.HasPrefix(k, p) {
					js[k] = v
				}
			}
		}
		b, _ := json.Marshal(js)
		l.js = string(b)
	}
	return map[string]*Lang{"en": en, "zh": zh}
}()

// T translates key, formatting args into it; an unknown key shows itself
// (and a test fails).
func (l *Lang) T(key string, args ...any) string {
	m, ok := l.msgs[key]
	if !ok {
		m = key
	}
	if len(args) > 0 {
		return fmt.Sprintf(m, args...)
	}
	return m
}

// Has tells whether key is translated.
func (l *Lang) Has(key string) bool { _, ok := l.msgs[key]; return ok }

// Status names a status value (task, host, plan, delivery).
func (l *Lang) Status(s string) string {
	if s == "" {
		return ""
	}
	if m, ok := l.msgs["status."+s]; ok {
		return m
	}
	return s
}

// Event names an event type.
func (l *Lang) Event(s string) string {
	if m, ok := l.msgs["event."+s]; ok {
		return m
	}
	return s
}

// Other is the other language, for the switch.
func (l *Lang) Other() *Lang {
	if l.Code == "zh" {
		return catalogs["en"]
	}
	return catalogs["zh"]
}

func (l *Lang) jsMessages() string { return l.js }

// langFor picks the language: the switch's cookie, else the browser's
// Accept-Language, else English.
func langFor(r *http.Request) *Lang {
	if ck, err := r.Cookie(langCookie); err == nil {
		if l, ok := catalogs[ck.Value]; ok {
			return l
		}
	}
	return catalogs[fromAcceptLanguage(r.Header.Get("Accept-Language"))]
}

// fromAcceptLanguage returns "zh" or "en", whichever the header prefers.
func fromAcceptLanguage(h string) string {
	best, bestQ := "en", -1.0
	for _, part := range strings.Split(h, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if (base == "zh" || base == "en") && q > bestQ {
			best, bestQ = base, q
		}
	}
	return best
}
