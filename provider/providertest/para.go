package providertest

import (
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Para is a loopback fake of Para's server-side endpoints:
//
//   - POST {URL}/sessions/verify, header x-external-api-key, body
//     {"verificationToken": ...}: 200 {authType, identifier, oAuthMethod?}
//     for a live token, 403 for an expired, revoked or unknown one;
//   - POST {URL}/wallets/verify, body {"address": ...}: 200 {"walletId"}
//     or 404;
//   - GET {URL}/.well-known/jwks.json: the keys of its JWTs, which carry
//     the documented claims (data, iat, exp, aud = APIKeyID, sub).
//
// A wrong or missing secret key is 401 and a body of the wrong shape 400.
// It is safe for concurrent use.
type Para struct {
	// URL is the API root to configure as the Para base URL.
	URL string
	// SecretAPIKey is the secret key the fake accepts.
	SecretAPIKey string
	// APIKeyID is the "aud" of the JWTs it issues.
	APIKeyID string
	// Keys signs the JWTs and serves them at /.well-known/jwks.json.
	Keys *Keys

	Server // Close, Calls, LastRequest, SetFault
	verify atomic.Int64
	wallet atomic.Int64

	tokens grants[ParaUser] // verification tokens

	mu      sync.Mutex
	users   map[string]ParaUser // by authType + identifier
	wallets map[string]string   // address → wallet id
}

// ParaUser is a Para user as the fake's tokens describe them.
type ParaUser struct {
	// ID is Para's user id (a JWT's sub). Generated when empty.
	ID string
	// AuthType is "email", "phone", "telegram", "farcaster" or
	// "externalWallet". Default "email".
	AuthType string
	// Identifier is the email, phone number, Telegram id, Farcaster name
	// or wallet address they signed in with. Required.
	Identifier string
	// OAuthMethod is "google", "x", "discord", "facebook", "apple" or "".
	OAuthMethod string
	// Wallets are their embedded wallets. Default: one generated EVM
	// wallet.
	Wallets []ParaWallet
}

// ParaWallet is an embedded wallet, as a Para JWT lists it.
type ParaWallet struct {
	ID        string `json:"id"`        // wallet id, what wallets/verify answers for Address
	Type      string `json:"type"`      // "EVM", "SOLANA", "COSMOS"
	Address   string `json:"address"`   // chain address
	PublicKey string `json:"publicKey"` // optional
}

// NewPara starts a fake Para on a free loopback port. Close it when done.
func NewPara() *Para {
	f := &Para{
		SecretAPIKey: "sk_" + randomString(24),
		APIKeyID:     randomUUID(),
		Keys:         NewKeys(),
		users:        map[string]ParaUser{},
		wallets:      map[string]string{},
	}
	f.counts = map[string]*atomic.Int64{"/sessions/verify": &f.verify, "/wallets/verify": &f.wallet, "/.well-known/jwks.json": &f.Keys.calls}
	f.keep = func(r *http.Request) bool { return r.Method == http.MethodPost }
	f.URL = f.start(f.serve)
	return f
}

// VerifyCalls returns how many /sessions/verify calls the fake received.
func (f *Para) VerifyCalls() int64 { return f.verify.Load() }

// WalletCalls returns how many /wallets/verify calls the fake received.
func (f *Para) WalletCalls() int64 { return f.wallet.Load() }

// User returns the user signed in with authType and identifier, creating
// it (with an id and a wallet) the first time, so that ids are stable
// across sign-ins as Para's are.
func (f *Para) User(u ParaUser) ParaUser {
	if u.AuthType == "" {
		u.AuthType = "email"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := u.AuthType + "\x00" + u.Identifier
	if known, ok := f.users[key]; ok {
		known.OAuthMethod = u.OAuthMethod
		return known
	}
	if u.ID == "" {
		u.ID = randomUUID()
	}
	if u.Wallets == nil {
		u.Wallets = []ParaWallet{{ID: randomUUID(), Type: "EVM", Address: "0x" + hex.EncodeToString(randomBytes(20)), PublicKey: ""}}
	}
	for _, w := range u.Wallets {
		f.wallets[w.Address] = w.ID
	}
	f.users[key] = u
	return u
}

// VerificationToken returns a verification token for u, valid for ttl, as
// para.getVerificationToken() would hand one to the frontend.
func (f *Para) VerificationToken(u ParaUser, ttl time.Duration) string {
	return f.tokens.issue(43, f.User(u), time.Now().Add(ttl))
}

// Revoke makes the fake answer 403 for a verification token from now on.
func (f *Para) Revoke(token string) { f.tokens.revoke(token) }

// JWT returns a Para JWT for u, valid for ttl, as issueJwt() would: the
// documented payload signed with the current key.
func (f *Para) JWT(u ParaUser, ttl time.Duration) string {
	u = f.User(u)
	now := time.Now()
	return f.Keys.Sign(map[string]any{
		"data": ParaData(u),
		"iat":  now.Unix(),
		"exp":  now.Add(ttl).Unix(),
		"aud":  f.APIKeyID,
		"sub":  u.ID,
	})
}

// ParaData returns the "data" claim of a Para JWT for u, in the documented
// shape for its auth type.
func ParaData(u ParaUser) map[string]any {
	data := map[string]any{
		"userId":     u.ID,
		"wallets":    u.Wallets,
		"authType":   u.AuthType,
		"identifier": u.Identifier,
	}
	if u.OAuthMethod != "" {
		data["oAuthMethod"] = u.OAuthMethod
	}
	switch u.AuthType {
	case "email":
		data["email"] = u.Identifier
	case "phone":
		data["phone"] = u.Identifier
	case "telegram":
		data["telegramUserId"] = u.Identifier
	case "farcaster":
		data["farcasterUsername"] = u.Identifier
	case "externalWallet":
		data["externalWalletAddress"] = u.Identifier
		data["externalWallet"] = map[string]any{"address": u.Identifier, "type": "EVM", "provider": "MetaMask"}
	}
	return data
}

func (f *Para) serve(w http.ResponseWriter, r *http.Request, raw []byte) {
	switch {
	case r.URL.Path == "/.well-known/jwks.json" && r.Method == http.MethodGet:
		f.Keys.serveJWKS(w)
	case r.URL.Path == "/sessions/verify" && r.Method == http.MethodPost:
		f.serveVerify(w, r, raw)
	case r.URL.Path == "/wallets/verify" && r.Method == http.MethodPost:
		f.serveWallet(w, r, raw)
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "not found"})
	}
}

// authorized answers 401 or 400 and returns false for a request without
// the secret key or without a JSON content type.
func (f *Para) authorized(w http.ResponseWriter, r *http.Request) bool {
	if !hmac.Equal([]byte(r.Header.Get("x-external-api-key")), []byte(f.SecretAPIKey)) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "invalid api key"})
		return false
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "content-type must be application/json"})
		return false
	}
	return true
}

func (f *Para) serveVerify(w http.ResponseWriter, r *http.Request, raw []byte) {
	if !f.authorized(w, r) {
		return
	}
	var body struct {
		VerificationToken string `json:"verificationToken"`
	}
	if json.Unmarshal(raw, &body) != nil || body.VerificationToken == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Missing verification token"})
		return
	}
	user, ok := f.tokens.live(body.VerificationToken)
	if !ok {
		writeJSON(w, http.StatusForbidden, map[string]any{"message": "Session expired"})
		return
	}
	answer := map[string]any{"authType": user.AuthType, "identifier": user.Identifier}
	if user.OAuthMethod != "" {
		answer["oAuthMethod"] = user.OAuthMethod
	}
	writeJSON(w, http.StatusOK, answer)
}

func (f *Para) serveWallet(w http.ResponseWriter, r *http.Request, raw []byte) {
	if !f.authorized(w, r) {
		return
	}
	var body struct {
		Address string `json:"address"`
	}
	if json.Unmarshal(raw, &body) != nil || body.Address == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Missing address"})
		return
	}
	f.mu.Lock()
	id, ok := f.wallets[body.Address]
	f.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": fmt.Sprintf("Wallet not found with address: %s", body.Address)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"walletId": id})
}
