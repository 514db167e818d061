package middleware

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/plurality"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store"
)

// FuzzSessionCandidates parses arbitrary Cookie and session headers: every
// candidate is a well-formed token the request carried, distinct, at most
// maxSessionCandidates of them, and the cookie may be cleared only when
// none was left untried.
func FuzzSessionCandidates(f *testing.F) {
	tok := strings.Repeat("A", 43)
	f.Add("session=abc; other=1", "session", "")
	f.Add(`a=1;session="`+tok+`"`, "session", tok)
	f.Add("session", "session", "")
	f.Add(";;= ;session=;", "session", "x")
	f.Add("s="+tok+"; s="+tok+"; s=B"+tok[1:]+"; s=C"+tok[1:]+"; s=D"+tok[1:], "s", "E"+tok[1:])
	f.Fuzz(func(t *testing.T, cookie, name, header string) {
		a := &Auth{cookieName: name, sessionHeader: "X-Session-Token"}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Cookie"] = []string{cookie}
		r.Header["X-Session-Token"] = []string{header}
		c := a.sessionCandidates(r)
		if c.n > maxSessionCandidates || c.n < 0 {
			t.Fatalf("%d candidates", c.n)
		}
		fromCookie := 0
		for i := range c.n {
			v := c.token[i]
			if !format.ValidToken(v) {
				t.Fatalf("candidate %q is not a session token", v)
			}
			if !strings.Contains(cookie, v) && v != header {
				t.Fatalf("candidate %q is not in the request", v)
			}
			for j := range i {
				if c.token[j] == v {
					t.Fatalf("candidate %q twice", v)
				}
			}
			if c.fromCookie[i] {
				fromCookie++
			}
		}
		if fromCookie > c.cookies {
			t.Fatalf("%d cookie candidates from %d cookies", fromCookie, c.cookies)
		}
		if c.clearable() && c.dropped {
			t.Fatal("clearable with untried candidates")
		}
	})
}

// FuzzCredentials sends arbitrary credential headers through the whole
// middleware: whatever a client sends, the answer is one of the statuses
// DESIGN.md lists, never a 500 or a panic, and a malformed frontend token
// never reaches the provider.
func FuzzCredentials(f *testing.F) {
	fake := providertest.NewPlurality()
	f.Cleanup(fake.Close)
	auth := New(Config{
		Store:      store.NewMemory(),
		Provider:   plurality.New(plurality.Config{BaseURL: fake.URL, ClientID: fake.ClientID, ClientSecret: provider.Secret(fake.ClientSecret), Timeout: 30 * time.Second}),
		Secret:     "fuzz-secret-0123456789abcdef",
		GuessBurst: -1,
		Logger:     slog.New(slog.DiscardHandler),
	})
	h := auth.Handler(auth.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	good := fake.Issue("fuzz", time.Hour)
	f.Add("Bearer "+good, "", "")
	f.Add("Bearer ../../etc/passwd", "session=x", "")
	f.Add("bearer  "+good+" ", "session="+strings.Repeat("A", 43), strings.Repeat("A", 43))
	f.Add("Basic dXNlcjpwYXNz", "", "")
	f.Add("Bearer a.b.c", "session=\"\x00\"", "\x00")
	f.Fuzz(func(t *testing.T, authorization, cookie, sessionHeader string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{authorization}
		r.Header["Cookie"] = []string{cookie}
		r.Header["X-Session-Token"] = []string{sessionHeader}
		before := fake.Calls()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusOK, http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests, http.StatusServiceUnavailable:
		default:
			t.Fatalf("status %d for %q %q %q", w.Code, authorization, cookie, sessionHeader)
		}
		token, present, _ := auth.frontendToken(r)
		if present && !provider.ValidSyntax(token) && fake.Calls() != before {
			t.Fatalf("malformed token %q reached the provider", token)
		}
		for _, secret := range []string{good, sessionHeader} {
			if len(secret) > 8 && strings.Contains(w.Body.String(), secret) {
				t.Fatalf("the answer echoes a credential: %s", w.Body)
			}
		}
	})
}
