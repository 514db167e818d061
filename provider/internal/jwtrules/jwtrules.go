// Package jwtrules is the contract test every JWT-verifying provider
// passes: the JWT/JWKS rules of sessiongate, run against a fake upstream.
package jwtrules

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/providertest"
)

// Upstream is one fresh fake issuer and a way to build the provider under
// test against it.
type Upstream struct {
	// Keys signs the upstream's tokens and counts key-set fetches.
	Keys *providertest.Keys
	// SetFault breaks or restores the upstream's key-set endpoint.
	SetFault func(providertest.Fault)
	// New returns the provider under test, using clock now and the given
	// refresh interval for unknown key ids, with the default leeway (30 s).
	New func(now func() time.Time, refresh time.Duration) provider.Provider
	// Claims returns claims this provider accepts, naming sub.
	Claims func(sub string, iat, exp time.Time) map[string]any
}

// Run runs every rule against the upstreams start returns (one per
// subtest, cleaned up by its test).
func Run(t *testing.T, start func(t *testing.T) Upstream) {
	for _, rule := range rules {
		t.Run(rule.name, func(t *testing.T) {
			if !rule.serial {
				t.Parallel()
			}
			rule.run(t, newEnv(t, start(t)))
		})
	}
}

// env is one rule's world: the upstream, a clock, and the provider.
type env struct {
	Upstream
	t     *testing.T
	clock *clock
	p     provider.Provider
}

const refresh = 5 * time.Minute

func newEnv(t *testing.T, up Upstream) *env {
	c := &clock{now: time.Now()}
	return &env{Upstream: up, t: t, clock: c, p: up.New(c.Now, refresh)}
}

// valid returns claims valid now for sub.
func (e *env) valid(sub string) map[string]any {
	now := e.clock.Now()
	return e.Claims(sub, now.Add(-time.Minute), now.Add(10*time.Minute))
}

func (e *env) validate(token string) (*provider.Identity, error) {
	// Generous: a busy machine running -race must not fail a rule.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return e.p.Validate(ctx, token)
}

// refused asserts token is refused as invalid, for a reason containing
// reason when it is not empty.
func (e *env) refused(token, reason string) {
	e.t.Helper()
	id, err := e.validate(token)
	require.Error(e.t, err, "accepted: %+v", id)
	assert.ErrorIs(e.t, err, provider.ErrInvalidToken)
	assert.NotErrorIs(e.t, err, provider.ErrUnavailable)
	if reason != "" {
		assert.Contains(e.t, err.Error(), reason)
	}
	assert.NotContains(e.t, err.Error(), token, "the error repeats the token")
}

func (e *env) accepted(token, sub string) *provider.Identity {
	e.t.Helper()
	id, err := e.validate(token)
	require.NoError(e.t, err)
	assert.Equal(e.t, sub, id.UserID)
	assert.NotEmpty(e.t, id.Provider)
	return id
}

type rule struct {
	name   string
	run    func(t *testing.T, e *env)
	serial bool // measures memory: must not share the process with other rules
}

var rules = []rule{
	{"a valid token names its subject, its expiry plus the leeway, and its credential", func(t *testing.T, e *env) {
		claims := e.valid("user-1")
		id := e.accepted(e.Keys.Sign(claims), "user-1")
		exp := time.Unix(claims["exp"].(int64), 0)
		assert.Equal(t, exp.Add(provider.DefaultLeeway), id.Expiry.Local(), "Expiry is exp plus the one leeway")
		assert.NotEmpty(t, id.TokenID)
		assert.EqualValues(t, 1, e.Keys.Calls())
	}, false},
	{"expired at exactly exp plus the leeway is refused", func(t *testing.T, e *env) {
		now := e.clock.Now().Truncate(time.Second)
		e.refused(e.Keys.Sign(e.Claims("u", now.Add(-time.Hour), now.Add(-provider.DefaultLeeway))), "expired")
		e.accepted(e.Keys.Sign(e.Claims("u", now.Add(-time.Hour), now.Add(time.Second-provider.DefaultLeeway))), "u")
	}, false},
	{"every other spelling of a token is refused before any key fetch", func(t *testing.T, e *env) {
		token := e.Keys.Sign(e.valid("u"))
		spellings := otherSpellings(token)
		require.NotEmpty(t, spellings, "an RS256 signature always has trailing bits")
		for _, s := range spellings {
			e.refused(s, "malformed")
		}
		assert.Zero(t, e.Keys.Calls(), "a non-canonical token caused a key fetch")
		e.accepted(token, "u")
	}, false},
	{"another valid ECDSA signature of the same claims is the same credential", func(t *testing.T, e *env) {
		e.Keys.Rotate("ES256")
		claims := e.valid("u")
		token := e.Keys.Sign(claims)
		twin := providertest.NegateES256(token)
		require.NotEqual(t, token, twin)
		a, b := e.accepted(token, "u"), e.accepted(twin, "u")
		assert.Equal(t, a.TokenID, b.TokenID, "(r, n-s) verifies: it must name the same credential")
		claims["sub"] = "v"
		if _, ok := claims["data"]; ok {
			claims["data"].(map[string]any)["userId"] = "v"
		}
		other := e.accepted(e.Keys.Sign(claims), "v")
		assert.NotEqual(t, a.TokenID, other.TokenID, "other claims are another credential")
	}, false},
	{"registered claims are read exactly as named", func(t *testing.T, e *env) {
		now := e.clock.Now()
		future, past := now.Add(time.Hour).Unix(), now.Add(-time.Hour).Unix()
		claims := e.valid("u")
		delete(claims, "exp")
		claims["EXP"] = future
		e.refused(e.Keys.Sign(claims), `no "exp"`)

		claims = e.valid("u")
		aud := claims["aud"]
		delete(claims, "aud")
		claims["AUD"] = aud
		e.refused(e.Keys.Sign(claims), "audience")

		claims = e.valid("u")
		delete(claims, "exp")
		raw, err := json.Marshal(claims)
		require.NoError(t, err)
		// encoding/json into a struct: case-insensitive, last match wins.
		payload := fmt.Sprintf(`{"exp": %d, %s, "Exp": %d}`, past, raw[1:len(raw)-1], future)
		e.refused(e.Keys.Sign([]byte(payload)), "expired")
	}, false},
	{"duplicate member names are refused", func(t *testing.T, e *env) {
		now := e.clock.Now()
		claims := e.valid("u")
		delete(claims, "exp")
		raw, err := json.Marshal(claims)
		require.NoError(t, err)
		body := string(raw[1 : len(raw)-1])
		kid, alg := e.Keys.Current()
		valid, err := json.Marshal(e.valid("u"))
		require.NoError(t, err)
		for _, header := range []string{
			fmt.Sprintf(`{"alg": %q, "kid": %q, "alg": "none"}`, alg, kid),
			fmt.Sprintf(`{"alg": %q, "kid": "unknown", "kid": %q}`, alg, kid),
		} {
			e.refused(e.Keys.SignRaw([]byte(header), valid), "malformed")
		}
		assert.Zero(t, e.Keys.Calls(), "a duplicate header member caused a key fetch")
		for _, payload := range []string{
			fmt.Sprintf(`{"exp": %d, %s, "exp": %d}`, now.Add(-time.Hour).Unix(), body, now.Add(time.Hour).Unix()),
			fmt.Sprintf(`{"exp": %d, %s, "\u0065xp": %d}`, now.Add(time.Hour).Unix(), body, now.Add(time.Hour).Unix()),
			fmt.Sprintf(`{"exp": %d, %s, "x": {"a": 1, "a": 2}}`, now.Add(time.Hour).Unix(), body),
			fmt.Sprintf(`{"exp": %d, %s, "x": [{"a": 1, "a": 2}]}`, now.Add(time.Hour).Unix(), body),
		} {
			e.refused(e.Keys.Sign([]byte(payload)), "")
		}
		e.accepted(e.Keys.SignRaw([]byte(fmt.Sprintf(`{"alg": %q, "kid": %q}`, alg, kid)), valid), "u")
	}, false},
	{"time claims out of range are refused", func(t *testing.T, e *env) {
		for name, v := range map[string]any{
			"exp": 1e16, "nbf": 1e16, "iat": -5, "auth_time": 1e300,
		} {
			claims := e.valid("u")
			claims[name] = v
			e.refused(e.Keys.Sign(claims), name)
		}
		claims := e.valid("u")
		claims["exp"] = float64(provider.MaxTime.Unix()) + 1
		e.refused(e.Keys.Sign(claims), "exp")
		claims["exp"] = provider.MaxTime.Unix()
		id := e.accepted(e.Keys.Sign(claims), "u")
		assert.False(t, id.Expiry.After(provider.MaxTime), "Expiry is never after MaxTime")
	}, false},
	{"expired beyond the leeway is refused", func(t *testing.T, e *env) {
		now := e.clock.Now()
		e.refused(e.Keys.Sign(e.Claims("u", now.Add(-time.Hour), now.Add(-time.Minute))), "expired")
	}, false},
	{"expired within the leeway is accepted", func(t *testing.T, e *env) {
		now := e.clock.Now()
		e.accepted(e.Keys.Sign(e.Claims("u", now.Add(-time.Hour), now.Add(-10*time.Second))), "u")
	}, false},
	{"not valid yet is refused", func(t *testing.T, e *env) {
		claims := e.valid("u")
		claims["nbf"] = e.clock.Now().Add(5 * time.Minute).Unix()
		e.refused(e.Keys.Sign(claims), "not valid yet")
	}, false},
	{"issued in the future is refused", func(t *testing.T, e *env) {
		now := e.clock.Now()
		e.refused(e.Keys.Sign(e.Claims("u", now.Add(5*time.Minute), now.Add(time.Hour))), "future")
	}, false},
	{"auth_time: a NumericDate in range, at most the leeway ahead", func(t *testing.T, e *env) {
		now := e.clock.Now()
		for _, c := range []struct {
			name   string
			value  any
			reason string // "" when accepted
		}{
			{"an hour ago", float64(now.Add(-time.Hour).Unix()), ""},
			{"fractional", float64(now.Add(-time.Hour).Unix()) + 0.5, ""},
			{"the epoch", 0.0, ""},
			{"now", float64(now.Unix()), ""},
			{"within the leeway ahead", float64(now.Add(20 * time.Second).Unix()), ""},
			{"beyond the leeway ahead", float64(now.Add(2 * time.Minute).Unix()), "authenticated in the future"},
			{"negative", -1.0, "auth_time"},
			{"past MaxTime", float64(provider.MaxTime.Unix()) + 1, "auth_time"},
			{"a string", "yesterday", "auth_time"},
			{"a numeric string", "1700000000", "auth_time"},
			{"null", nil, "auth_time"},
			{"a bool", true, "auth_time"},
			{"an object", map[string]any{"t": 1}, "auth_time"},
		} {
			t.Run(c.name, func(t *testing.T) {
				e := &env{Upstream: e.Upstream, t: t, clock: e.clock, p: e.p}
				claims := e.valid("u")
				claims["auth_time"] = c.value
				token := e.Keys.Sign(claims)
				if c.reason != "" {
					e.refused(token, c.reason)
					return
				}
				id := e.accepted(token, "u")
				assert.False(t, id.AuthTime.After(now.Add(provider.DefaultLeeway)), "AuthTime is never past now + leeway")
			})
		}
	}, false},
	{"no exp is refused", func(t *testing.T, e *env) {
		claims := e.valid("u")
		delete(claims, "exp")
		e.refused(e.Keys.Sign(claims), "exp")
	}, false},
	{"another audience is refused", func(t *testing.T, e *env) {
		claims := e.valid("u")
		claims["aud"] = []string{"someone-else"}
		e.refused(e.Keys.Sign(claims), "audience")
	}, false},
	{"no subject is refused", func(t *testing.T, e *env) {
		claims := e.valid("u")
		delete(claims, "sub")
		e.refused(e.Keys.Sign(claims), "")
	}, false},
	{"alg none is refused", func(t *testing.T, e *env) {
		kid, _ := e.Keys.Current()
		for _, alg := range []string{"none", "None", "NONE"} {
			e.refused(unsigned(map[string]any{"alg": alg, "typ": "JWT", "kid": kid}, e.valid("u"), ""), "algorithm")
		}
	}, false},
	{"HS256 signed with the public key is refused", func(t *testing.T, e *env) {
		kid, _ := e.Keys.Current()
		for _, secret := range publicKeyForms(t, e.Keys) {
			header := map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}
			signing := unsigned(header, e.valid("u"), "")
			signing = signing[:len(signing)-1]
			mac := hmac.New(sha256.New, secret)
			mac.Write([]byte(signing))
			e.refused(signing+"."+base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), "algorithm")
		}
	}, false},
	{"a stripped signature is refused", func(t *testing.T, e *env) {
		token := e.Keys.Sign(e.valid("u"))
		e.refused(token[:strings.LastIndexByte(token, '.')+1], "")
		e.refused(token[:strings.LastIndexByte(token, '.')], "malformed")
	}, false},
	{"a signature from another token is refused", func(t *testing.T, e *env) {
		a := e.Keys.Sign(e.valid("alice"))
		b := e.Keys.Sign(e.valid("bob"))
		forged := a[:strings.LastIndexByte(a, '.')] + b[strings.LastIndexByte(b, '.'):]
		e.refused(forged, "signature")
	}, false},
	{"expired and badly signed is refused for its signature, not its claims", func(t *testing.T, e *env) {
		kid, _ := e.Keys.Current()
		now := e.clock.Now()
		forged := providertest.Sign(jose.RS256, rsaKey(t), kid, nil, e.Claims("u", now.Add(-2*time.Hour), now.Add(-time.Hour)))
		e.refused(forged, "signature")
		_, err := e.validate(forged)
		assert.NotContains(t, err.Error(), "expired")
	}, false},
	{"jku, x5u and embedded jwk headers are ignored", func(t *testing.T, e *env) {
		attacker := rsaKey(t)
		var hits atomic.Int64
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: attacker.Public(), KeyID: "evil", Algorithm: "RS256", Use: "sig"}}})
		}))
		t.Cleanup(evil.Close)
		jwk := jose.JSONWebKey{Key: attacker.Public(), KeyID: "evil", Algorithm: "RS256"}
		headers := map[string]any{"jku": evil.URL + "/jwks.json", "x5u": evil.URL + "/cert.pem", "jwk": jwk}
		e.refused(providertest.Sign(jose.RS256, attacker, "evil", headers, e.valid("u")), "")
		kid, _ := e.Keys.Current()
		e.refused(providertest.Sign(jose.RS256, attacker, kid, headers, e.valid("u")), "signature")
		assert.Zero(t, hits.Load(), "a request went to a URL named by the token")
	}, false},
	{"unknown kids cause at most one refetch per interval", func(t *testing.T, e *env) {
		e.accepted(e.Keys.Sign(e.valid("u")), "u")
		require.EqualValues(t, 1, e.Keys.Calls())
		attacker := rsaKey(t)
		// Each is refused after a fetch that completed after it arrived, or
		// is "cannot verify now" (503) while the refetch is throttled.
		flood := func() {
			var wg sync.WaitGroup
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id, err := e.validate(providertest.Sign(jose.RS256, attacker, "unknown-"+string(rune('a'+i%26)), nil, e.valid("u")))
					require.Error(t, err, "accepted: %+v", id)
					var ue *provider.UnavailableError
					if errors.As(err, &ue) {
						assert.Positive(t, ue.RetryAfter, "a throttled refetch says when to retry")
						assert.LessOrEqual(t, ue.RetryAfter, refresh)
					} else {
						assert.ErrorIs(t, err, provider.ErrInvalidToken)
					}
				}()
			}
			wg.Wait()
		}
		flood()
		assert.EqualValues(t, 2, e.Keys.Calls(), "50 unknown kids: one refetch")
		flood()
		e.clock.Advance(refresh - time.Second)
		flood()
		assert.EqualValues(t, 2, e.Keys.Calls(), "within the interval: no more refetches")
		e.clock.Advance(2 * time.Second)
		flood()
		assert.EqualValues(t, 3, e.Keys.Calls(), "after the interval: one more")
		e.accepted(e.Keys.Sign(e.valid("u")), "u")
	}, false},
	{"concurrent first fetches are shared", func(t *testing.T, e *env) {
		e.SetFault(providertest.Fault{Delay: 300 * time.Millisecond})
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id, err := e.validate(e.Keys.Sign(e.valid("user")))
				if assert.NoError(t, err, "token %d", i) {
					assert.Equal(t, "user", id.UserID)
				}
			}()
		}
		wg.Wait()
		assert.EqualValues(t, 1, e.Keys.Calls())
	}, false},
	{"a rotated key is picked up with one refetch", func(t *testing.T, e *env) {
		e.accepted(e.Keys.Sign(e.valid("u")), "u")
		e.Keys.Rotate("ES256")
		e.accepted(e.Keys.Sign(e.valid("u")), "u")
		assert.EqualValues(t, 2, e.Keys.Calls())
	}, false},
	{"a key rotated after a throttled refetch is unavailable until the interval passes, never invalid", func(t *testing.T, e *env) {
		e.accepted(e.Keys.Sign(e.valid("u")), "u")
		e.refused(providertest.Sign(jose.RS256, rsaKey(t), "unknown", nil, e.valid("u")), "key")
		require.EqualValues(t, 2, e.Keys.Calls(), "the unknown kid caused one refetch")
		e.clock.Advance(time.Minute)
		e.Keys.Rotate("EdDSA")
		genuine := e.Keys.Sign(e.valid("u"))
		_, err := e.validate(genuine)
		var ue *provider.UnavailableError
		require.ErrorAs(t, err, &ue, "a genuine token signed with a new key must not be refused as invalid")
		assert.NotErrorIs(t, err, provider.ErrInvalidToken)
		assert.Equal(t, refresh-time.Minute, ue.RetryAfter, "RetryAfter is the time until a refetch is allowed")
		assert.NotContains(t, err.Error(), genuine)
		assert.EqualValues(t, 2, e.Keys.Calls(), "the throttle held")
		e.clock.Advance(ue.RetryAfter)
		e.accepted(genuine, "u")
		assert.EqualValues(t, 3, e.Keys.Calls())
	}, false},
	{"a token without kid is tried against fitting keys", func(t *testing.T, e *env) {
		e.accepted(e.Keys.SignWithHeaders(map[string]any{"kid": ""}, e.valid("u")), "u")
	}, false},
	{"an algorithm the key does not fit is refused", func(t *testing.T, e *env) {
		kid, _ := e.Keys.Current() // an RS256 key
		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		e.refused(providertest.Sign(jose.ES256, ec, kid, nil, e.valid("u")), "key")
	}, false},
	{"cached keys keep verifying while the key set is down", func(t *testing.T, e *env) {
		e.accepted(e.Keys.Sign(e.valid("u")), "u")
		e.SetFault(providertest.Fault{Down: true})
		e.clock.Advance(3 * time.Hour) // older than any max key age: a refresh is tried and fails
		for range 3 {
			e.accepted(e.Keys.Sign(e.valid("u")), "u")
		}
		_, err := e.validate(providertest.Sign(jose.RS256, rsaKey(t), "new-kid", nil, e.valid("u")))
		assert.Error(t, err)
	}, false},
	{"no keys and the key set down is unavailable, not invalid", func(t *testing.T, e *env) {
		e.SetFault(providertest.Fault{Status: http.StatusServiceUnavailable, RetryAfter: "7"})
		_, err := e.validate(e.Keys.Sign(e.valid("u")))
		assert.ErrorIs(t, err, provider.ErrUnavailable)
		assert.NotErrorIs(t, err, provider.ErrInvalidToken)
		var ue *provider.UnavailableError
		if assert.True(t, errors.As(err, &ue)) {
			assert.Equal(t, 7*time.Second, ue.RetryAfter)
		}
		e.SetFault(providertest.Fault{})
		e.clock.Advance(2 * time.Second)
		e.accepted(e.Keys.Sign(e.valid("u")), "u")
	}, false},
	{"garbage key sets are unavailable", func(t *testing.T, e *env) {
		for _, body := range []string{"not json", `{"keys": "x"}`, `{"keys": []}`, `{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}`, strings.Repeat("x", 2<<20)} {
			e.SetFault(providertest.Fault{Body: []byte(body)})
			_, err := e.validate(e.Keys.Sign(e.valid("u")))
			assert.ErrorIs(t, err, provider.ErrUnavailable, "key set %.40q", body)
			e.clock.Advance(2 * time.Second)
		}
	}, false},
	{"a megabyte of dots is refused at once, with bounded memory", func(t *testing.T, e *env) {
		dots := strings.Repeat(".", 1<<20)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 100 {
			_, err := e.p.Validate(context.Background(), dots)
			require.ErrorIs(t, err, provider.ErrInvalidToken)
		}
		runtime.ReadMemStats(&after)
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "100 refusals allocated a megabyte or more")
		e.refused(strings.Repeat("a", provider.MaxTokenSize)+".b.c", "malformed")
		assert.Zero(t, e.Keys.Calls(), "a malformed token caused a key fetch")
	}, true},
	{"claims that are not a JSON object are refused", func(t *testing.T, e *env) {
		for _, payload := range []string{`"a string"`, `[1,2]`, `{"exp": "tomorrow"}`, `{"aud": 7}`, `not json`} {
			e.refused(e.Keys.Sign([]byte(payload)), "")
		}
	}, false},
}

// otherSpellings returns the non-canonical spellings of token that a
// lenient base64url decoder reads as the same bytes: each part's last
// character with its unused low bits changed, and "=" padding.
func otherSpellings(token string) []string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	parts := strings.Split(token, ".")
	var out []string
	for i, part := range parts {
		want, err := base64.RawURLEncoding.DecodeString(part)
		if err != nil || len(part) == 0 {
			continue
		}
		last := strings.IndexByte(alphabet, part[len(part)-1])
		for _, flip := range []int{1, 2, 3} {
			variant := part[:len(part)-1] + string(alphabet[last^flip])
			if got, err := base64.RawURLEncoding.DecodeString(variant); err == nil && string(got) == string(want) {
				out = append(out, join(parts, i, variant))
			}
		}
		if len(part)%4 != 0 {
			out = append(out, join(parts, i, part+strings.Repeat("=", 4-len(part)%4)))
		}
	}
	return out
}

// join returns parts joined by dots, with part i replaced by with.
func join(parts []string, i int, with string) string {
	p := append([]string(nil), parts...)
	p[i] = with
	return strings.Join(p, ".")
}

// unsigned returns header.payload.signature with base64url parts.
func unsigned(header, claims map[string]any, signature string) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "." + signature
}

// publicKeyForms returns the forms an attacker might use the issuer's
// public key in as an HMAC secret: PEM, DER, and the JWKS itself.
func publicKeyForms(t *testing.T, keys *providertest.Keys) [][]byte {
	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(keys.JWKS(), &set))
	der, err := x509.MarshalPKIXPublicKey(set.Keys[0].Key)
	require.NoError(t, err)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return [][]byte{pemBytes, der, keys.JWKS()}
}

func rsaKey(t *testing.T) crypto.Signer {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return k
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now is the clock's time.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
