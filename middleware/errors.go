package middleware

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Error codes of the JSON error bodies, {"error": code, "message": text}.
const (
	codeUnauthorized       = "unauthorized"
	codeInvalidToken       = "invalid_token"
	codeProviderDown       = "provider_unavailable"
	codeStoreDown          = "session_store_unavailable"
	codeCrossOrigin        = "cross_origin_request"
	codeNotFound           = "not_found"
	codeRateLimited        = "rate_limited"
	codeInsufficientAuth   = "insufficient_user_authentication"
	codeForbidden          = "forbidden"
	messageSessionRequired = "a session is required: send the session cookie, the session header or a frontend token"
	messageRateLimited     = "too many failed attempts; retry later"
	messageStoreDown       = "the session store is unavailable; retry later"
	messageProviderDown    = "the identity provider is unavailable; retry later"
	// messageInsufficientAuth is also the challenge's error_description:
	// no double quote or backslash.
	messageInsufficientAuth = "a more recent authentication is required"
)

// storeUnavailable answers 503 session_store_unavailable for err, which
// the engine has told (EventStoreError, logged at most once a second).
func (a *Auth) storeUnavailable(w http.ResponseWriter, err error) {
	writeError(w, http.StatusServiceUnavailable, codeStoreDown, messageStoreDown, a.cfg.RetryAfter)
}

// writeError writes a JSON error. A retryAfter above zero adds Retry-After
// (whole seconds, at least 1).
func writeError(w http.ResponseWriter, status int, code, message string, retryAfter time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	switch code {
	case codeUnauthorized:
		h.Set("WWW-Authenticate", "Bearer")
	case codeInvalidToken:
		h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(max(1, (retryAfter+time.Second-1)/time.Second))))
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{code, message})
}
