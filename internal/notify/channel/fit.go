package channel

// Shorten cuts the longest field values, never the labels, until fits
// accepts the fields; a value is cut as little as needed. Each platform
// escapes differently, so the measure is the message as rendered.
func Shorten(fields []Field, fits func([]Field) bool) []Field {
	out := append([]Field(nil), fields...)
	for !fits(out) {
		i, longest := -1, 1
		for j, f := range out {
			if n := len([]rune(f.Value)); n > longest {
				i, longest = j, n
			}
		}
		if i < 0 {
			return out // nothing left to cut; the platform's refusal will say so
		}
		out[i].Value = FitString(out[i].Value, func(v string) bool {
			trial := append([]Field(nil), out...)
			trial[i].Value = v
			return fits(trial)
		})
	}
	return out
}

// FitString returns s, or its longest prefix ending in "…" that fits ("…"
// alone when none does).
func FitString(s string, fits func(string) bool) string {
	if fits(s) {
		return s
	}
	r := []rune(s)
	// Invariant: keeping lo runes fits (or lo is 0), keeping hi does not.
	lo, hi := 0, len(r)
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if fits(string(r[:mid]) + "…") {
			lo = mid
		} else {
			hi = mid
		}
	}
	return string(r[:lo]) + "…"
}
