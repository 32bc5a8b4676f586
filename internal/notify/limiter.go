package notify

import (
	"sync"
	"time"

	"github.com/herald-release/herald/internal/notify/channel"
)

// limiter keeps each robot under its platform's limits (DingTalk and WeCom
// 20/min, Feishu 5/s and 100/min): a send over the limit is delayed, never
// dropped. It is a sliding window per key, in this process; several Herald
// processes each keep their own window.
type limiter struct {
	mu   sync.Mutex
	now  func() time.Time
	sent map[string][]time.Time // send times, oldest first, trimmed to the longest window
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, sent: map[string][]time.Time{}}
}

// reserve records a send now and returns 0 when every limit allows it;
// otherwise it records nothing and returns how long to wait.
func (l *limiter) reserve(key string, limits []channel.Limit) time.Duration {
	if key == "" || len(limits) == 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var longest time.Duration
	for _, lim := range limits {
		longest = max(longest, lim.Per)
	}
	times := l.sent[key]
	// Forget sends older than every window.
	cut := 0
	for cut < len(times) && now.Sub(times[cut]) >= longest {
		cut++
	}
	times = times[cut:]
	var wait time.Duration
	for _, lim := range limits {
		if lim.Count <= 0 {
			continue
		}
		// Count the sends inside this window; the window is full when
		// there are Count of them, and frees up when the oldest leaves.
		in := 0
		for i := len(times) - 1; i >= 0 && now.Sub(times[i]) < lim.Per; i-- {
			in++
		}
		if in >= lim.Count {
			oldest := times[len(times)-in]
			wait = max(wait, oldest.Add(lim.Per).Sub(now))
		}
	}
	if wait > 0 {
		l.sent[key] = times
		return wait
	}
	l.sent[key] = append(times, now)
	return 0
}
