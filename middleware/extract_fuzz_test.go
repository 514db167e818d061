package middleware

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/plurality"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store"
)

func FuzzCookieValue(f *testing.F) {
	f.Add("session=abc; other=1", "session")
	f.Add(`a=1;session="quoted"`, "session")
	f.Add("session", "session")
	f.Add(";;= ;session=;", "session")
	f.Fuzz(func(t *testing.T, header, name string) {
		v, ok := cookieValue(http.Header{"Cookie": {header}}, name)
		if !ok {
			if v != "" {
				t.Fatalf("not found but %q", v)
			}
			return
		}
		if !strings.Contains(header, name+"=") || !strings.Contains(header, v) {
			t.Fatalf("%q from %q is not a value of %q", v, header, name)
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
		Sessions:   store.NewManager(store.NewMemory()),
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
