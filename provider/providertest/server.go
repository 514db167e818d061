package providertest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
)

// Server is what every fake shares: a loopback HTTP server, a count of the
// requests it received, the last request it kept, and the Fault it
// injects. Each fake embeds one, so Close, Calls, LastRequest and SetFault
// are the fake's own; the fake adds only its wire format. A zero Server
// serves nothing. It is safe for concurrent use.
type Server struct {
	// Set by the fake before start.
	counts map[string]*atomic.Int64   // requests to a path, answered or not
	keep   func(r *http.Request) bool // which requests LastRequest keeps; nil: all

	srv    *httptest.Server
	calls  atomic.Int64
	faults faults
	lastMu sync.Mutex
	last   Request
}

// Request is what a fake recorded of the last call it received.
type Request struct {
	Method string      // HTTP method
	Path   string      // URL path
	Header http.Header // every header, credentials included (it is a test fake)
	Body   []byte      // the body, up to 64 KiB
}

// Close shuts the fake down.
func (s *Server) Close() {
	if s.srv != nil {
		s.srv.Close()
	}
}

// Calls returns how many requests the fake received, on any path,
// answered or not.
func (s *Server) Calls() int64 { return s.calls.Load() }

// LastRequest returns what the fake saw of the last request it keeps:
// any request (Para keeps only POSTs, not its key set's GETs).
func (s *Server) LastRequest() Request {
	s.lastMu.Lock()
	defer s.lastMu.Unlock()
	return s.last
}

// SetFault makes every following answer, on every path, fail as fault
// says; SetFault(Fault{}) restores normal answers.
func (s *Server) SetFault(fault Fault) { s.faults.set(fault) }

// start serves on a free loopback port and returns the server's URL.
// Every request is counted, its body (up to 64 KiB) read and, if keep
// allows, remembered; then the Fault answers, or handle does with the
// body.
func (s *Server) start(handle func(w http.ResponseWriter, r *http.Request, body []byte)) string {
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		if c := s.counts[r.URL.Path]; c != nil {
			c.Add(1)
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if s.keep == nil || s.keep(r) {
			s.lastMu.Lock()
			s.last = Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
			s.lastMu.Unlock()
		}
		if s.faults.apply(w, r) {
			return
		}
		handle(w, r, body)
	}))
	return s.srv.URL
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
