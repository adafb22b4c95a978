package device

import "time"

// LogLimiter lets one log line of each kind through per interval and
// counts the ones it held back, for sources that can repeat a failure many
// times a second. It is used by one goroutine only.
type LogLimiter struct {
	every time.Duration
	next  map[string]time.Time
	held  map[string]int
}

// NewLogLimiter returns a LogLimiter letting a line of each kind through
// every interval.
func NewLogLimiter(every time.Duration) *LogLimiter {
	return &LogLimiter{every: every, next: map[string]time.Time{}, held: map[string]int{}}
}

// Allow reports whether a line of this kind may be logged at now, and how
// many were held back since the last one that was.
func (l *LogLimiter) Allow(kind string, now time.Time) (bool, int) {
	if now.Before(l.next[kind]) {
		l.held[kind]++
		return false, 0
	}
	l.next[kind] = now.Add(l.every)
	n := l.held[kind]
	l.held[kind] = 0
	return true, n
}
