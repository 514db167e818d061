package providertest

import (
	"crypto/hmac"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Introspection is a loopback fake of an RFC 7662 token introspection
// endpoint at URL: POST, form token=..., client_secret_basic. It answers
// 200 {"active": true, sub, exp, iat, client_id, token_type, ...} for a
// live token it issued, 200 {"active": false} for any other, 401 for wrong
// client credentials and 400 for a request without a token. It is safe
// for concurrent use.
type Introspection struct {
	// URL is the introspection endpoint.
	URL string
	// ClientID and ClientSecret are the credentials the fake accepts.
	ClientID, ClientSecret string

	Server                        // Close, Calls, LastRequest, SetFault
	tokens grants[map[string]any] // the introspection answer for each live token
}

// NewIntrospection starts a fake introspection endpoint on a free loopback
// port. Close it when done.
func NewIntrospection() *Introspection {
	f := &Introspection{
		ClientID:     "rs-" + randomString(6),
		ClientSecret: "secret-" + randomString(18),
	}
	f.URL = f.start(f.serve) + "/oauth2/introspect"
	return f
}

// Issue returns an opaque token for sub, active for ttl, whose
// introspection answer also carries extra. Extra may override any member
// ("active", "exp" included) to test what a provider makes of odd answers;
// the fake itself answers {"active": false} once ttl has passed.
func (f *Introspection) Issue(sub string, ttl time.Duration, extra map[string]any) string {
	now := time.Now()
	answer := map[string]any{
		"active": true, "sub": sub, "client_id": "spa", "token_type": "Bearer",
		"scope": "openid profile", "iat": now.Unix(), "exp": now.Add(ttl).Unix(),
	}
	for k, v := range extra {
		answer[k] = v
	}
	return f.tokens.issue(40, answer, now.Add(ttl))
}

// Revoke makes the fake answer {"active": false} for token from now on.
func (f *Introspection) Revoke(token string) { f.tokens.revoke(token) }

func (f *Introspection) serve(w http.ResponseWriter, r *http.Request, raw []byte) {
	if r.Method != http.MethodPost || r.URL.Path != "/oauth2/introspect" {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not_found"})
		return
	}
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	if !ok || id != f.ClientID || !hmac.Equal([]byte(secret), []byte(f.ClientSecret)) {
		w.Header().Set("WWW-Authenticate", `Basic realm="introspection"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client"})
		return
	}
	form, err := url.ParseQuery(string(raw))
	if err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") || form.Get("token") == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request"})
		return
	}
	answer, ok := f.tokens.live(form.Get("token"))
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	writeJSON(w, http.StatusOK, answer)
}
