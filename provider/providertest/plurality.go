package providertest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Plurality is a loopback fake of Plurality's validate API
// (GET {URL}/user/validate with Basic client credentials and a JSON body
// {"token": ...}). It issues HS256 JWTs shaped like Plurality's (claims id,
// uniqueSessionId, iat, exp), reads tokens as leniently as many upstreams
// do (base64url with any trailing bits, JSON where the last of duplicate
// members wins), and answers:
//
//   - 200 {"valid": true} (plus Profile's fields) for a token it issued
//     that has not expired and was not revoked;
//   - 400 for a request that is not the documented shape;
//   - 401 for wrong client credentials or a token it does not accept.
//
// It is safe for concurrent use.
type Plurality struct {
	// URL is the API root to configure as plurality.Config.BaseURL.
	URL string
	// ClientID and ClientSecret are the credentials the fake accepts.
	ClientID, ClientSecret string

	// Profile, when set before use, adds fields to every 200 answer, such
	// as {"user": {"id": ...}} to exercise ids that come from the answer.
	Profile func(userID string) map[string]any

	// Now, when set before use, is the clock of the tokens Issue signs
	// ("iat", "exp"): a test whose sessiongate runs on a fake clock gives
	// it the same one. Default time.Now.
	Now func() time.Time

	Server  // Close, Calls, LastRequest, SetFault
	key     []byte
	mu      sync.Mutex
	revoked map[string]bool
}

// NewPlurality starts a fake Plurality on a free loopback port. Close it
// when done.
func NewPlurality() *Plurality {
	f := &Plurality{
		ClientID:     "client-" + randomString(6),
		ClientSecret: "secret-" + randomString(18),
		key:          []byte(randomString(32)),
		revoked:      map[string]bool{},
	}
	f.URL = f.start(f.serve) + "/api"
	return f
}

// Issue returns a token for userID that expires after ttl, as Plurality's
// widget would hand one to the frontend.
func (f *Plurality) Issue(userID string, ttl time.Duration) string {
	return f.IssueWith(userID, ttl, nil)
}

// IssueWith is Issue with extra claims in the payload, which may override
// any of Issue's ("exp" included) to test what a provider makes of odd
// tokens the fake still accepts.
func (f *Plurality) IssueWith(userID string, ttl time.Duration, extra map[string]any) string {
	now := time.Now()
	if f.Now != nil {
		now = f.Now()
	}
	claims := map[string]any{
		"id":              userID,
		"uniqueSessionId": randomUUID(),
		"iat":             now.Unix(),
		"exp":             now.Add(ttl).Unix(),
	}
	for k, v := range extra {
		claims[k] = v
	}
	return f.sign(claims)
}

// IssueRaw returns a token whose payload is exactly payload (duplicate
// members, odd names, anything), signed as Issue's are. The fake accepts
// it if its own lenient reading finds an "id" and a live "exp".
func (f *Plurality) IssueRaw(payload []byte) string {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	return f.signInput(header + "." + base64.RawURLEncoding.EncodeToString(payload))
}

// Revoke makes the fake reject token from now on, as if the user signed out
// upstream.
func (f *Plurality) Revoke(token string) {
	f.mu.Lock()
	f.revoked[token] = true
	f.mu.Unlock()
}

func (f *Plurality) serve(w http.ResponseWriter, r *http.Request, raw []byte) {
	var body struct {
		Token *string `json:"token"`
	}
	if r.URL.Path != "/api/user/validate" {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "not found"})
		return
	}
	if r.Method != http.MethodGet || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") ||
		json.Unmarshal(raw, &body) != nil || body.Token == nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "bad request"})
		return
	}
	if id, secret, ok := r.BasicAuth(); !ok || id != f.ClientID || !hmac.Equal([]byte(secret), []byte(f.ClientSecret)) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "invalid client credentials"})
		return
	}
	claims, ok := f.verify(*body.Token)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "invalid token"})
		return
	}
	answer := map[string]any{"valid": true}
	if f.Profile != nil {
		for k, v := range f.Profile(claims["id"].(string)) {
			answer[k] = v
		}
	}
	writeJSON(w, http.StatusOK, answer)
}

func (f *Plurality) sign(claims map[string]any) string {
	payload, _ := json.Marshal(claims)
	return f.IssueRaw(payload)
}

// signInput appends the HS256 signature of signing.
func (f *Plurality) signInput(signing string) string {
	mac := hmac.New(sha256.New, f.key)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// verify checks a token's signature, expiry and revocation.
func (f *Plurality) verify(token string) (map[string]any, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, false
	}
	mac := hmac.New(sha256.New, f.key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, false
	}
	var claims map[string]any
	if json.Unmarshal(raw, &claims) != nil {
		return nil, false
	}
	exp, _ := claims["exp"].(float64)
	if _, ok := claims["id"].(string); !ok || time.Now().Unix() >= int64(exp) {
		return nil, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return claims, !f.revoked[token]
}
