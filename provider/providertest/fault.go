package providertest

import (
	"bytes"
	"cmp"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Fault is a failure a fake injects into every answer until changed. The
// zero Fault means "behave normally".
type Fault struct {
	// Down closes every connection without answering.
	Down bool
	// Delay waits this long (or until the request is cancelled) before
	// answering.
	Delay time.Duration
	// Status, when not zero, answers with this status and Body instead of
	// validating.
	Status int
	// Body is the answer for Status (or for 200 when only Body is set):
	// use it for garbage or oversized answers.
	Body []byte
	// RetryAfter, when set, is sent as the Retry-After header with Status.
	RetryAfter string
	// Location, when set, is sent as the Location header with Status (a
	// 3xx). A request for Location itself (same host, path and query) is
	// answered normally, so a client that follows a redirect to the same
	// host gets the fake's real answer to what it re-sent.
	Location string
	// BodySize, when set, answers Status (default 200) with a JSON-looking
	// body of this many bytes, streamed: a 100 MB answer costs the fake
	// no memory.
	BodySize int64
}

// faults holds a fake's current Fault and applies it.
type faults struct {
	mu    sync.Mutex
	fault Fault
}

func (f *faults) set(fault Fault) {
	f.mu.Lock()
	f.fault = fault
	f.mu.Unlock()
}

// apply injects the current fault and reports whether it answered.
func (f *faults) apply(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	fault := f.fault
	f.mu.Unlock()
	if fault.Location != "" {
		if u, err := url.Parse(fault.Location); err == nil && (u.Host == "" || u.Host == r.Host) && u.RequestURI() == r.URL.RequestURI() {
			return false
		}
	}
	if fault.Delay > 0 {
		select {
		case <-time.After(fault.Delay):
		case <-r.Context().Done():
			return true
		}
	}
	switch {
	case fault.Down:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler)
	case fault.BodySize > 0:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(cmp.Or(fault.Status, http.StatusOK))
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		w.Write([]byte(`{"user":"`))
		for left := fault.BodySize; left > 0 && r.Context().Err() == nil; left -= int64(len(chunk)) {
			if _, err := w.Write(chunk[:min(left, int64(len(chunk)))]); err != nil {
				break
			}
		}
		return true
	case fault.Status != 0 || fault.Body != nil:
		status := fault.Status
		if status == 0 {
			status = http.StatusOK
		}
		if fault.RetryAfter != "" {
			w.Header().Set("Retry-After", fault.RetryAfter)
		}
		if fault.Location != "" {
			w.Header().Set("Location", fault.Location)
		}
		w.WriteHeader(status)
		w.Write(fault.Body)
		return true
	}
	return false
}
