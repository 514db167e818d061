package middleware

import (
	"sync/atomic"
	"time"
)

// everySecond lets an event that can repeat per request (an outage) be
// logged at most once a second, with how many times it happened since.
// The zero value is ready; it is safe for concurrent use.
type everySecond struct {
	last  atomic.Int64 // unix ns of the last logged time
	since atomic.Int64 // events since
}

// due counts one event at now and reports whether to log it, with the
// number of events since the last one logged (this one included).
func (e *everySecond) due(now time.Time) (int64, bool) {
	n := e.since.Add(1)
	t, last := now.UnixNano(), e.last.Load()
	if t-last < int64(time.Second) || !e.last.CompareAndSwap(last, t) {
		return 0, false
	}
	e.since.Add(-n)
	return n, true
}
