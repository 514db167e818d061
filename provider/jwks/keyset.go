package jwks

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/internal/strict"
)

// maxKeys is how many usable keys of one JWKS are kept; a real issuer
// publishes a handful, and a token without a kid is tried against each.
const maxKeys = 32

// minRSABits is the smallest RSA modulus accepted from a JWKS.
const minRSABits = 2048

// firstFetchRetry is how often a key set that has never been fetched
// tries again after a failure.
const firstFetchRetry = time.Second

// keySet is a remote JWKS: keys read under a RWMutex, refetched only when a
// token names a key it lacks (at most once per refresh interval, the first
// fetch aside) or, in the background, when the cached keys are older than
// maxAge, with concurrent refetches merged
// into one detached fetch that each waiter may leave on its own ctx. When a
// fetch fails, the keys already cached keep verifying.
type keySet struct {
	name    string
	locate  func(ctx context.Context) (string, error)
	client  *http.Client
	timeout time.Duration
	refresh time.Duration
	maxAge  time.Duration
	now     func() time.Time

	mu      sync.RWMutex
	keys    []jose.JSONWebKey
	fetched time.Time // last successful fetch; zero before the first
	tried   time.Time // last attempt, successful or not
	missed  time.Time // last refetch for a key not cached (after the first success)
	lastErr error     // the last attempt's error
	flight  *flight
}

// flight is one fetch in progress; done is closed when err is set.
type flight struct {
	done chan struct{}
	err  error
}

// keysFor returns the cached keys that could have signed a token with this
// kid and alg (every fitting key when kid is empty), fetching the set when
// none fits and the throttle allows. It fails with ErrInvalidToken only
// when a fetch that completed after the token arrived (one this call
// started or waited on) still lacks such a key; when the throttle forbids a fetch, or
// the keys could not be had, it fails with an *provider.UnavailableError.
func (s *keySet) keysFor(ctx context.Context, kid, alg string) ([]jose.JSONWebKey, error) {
	found, fresh := s.lookup(kid, alg)
	if len(found) > 0 {
		if !fresh {
			s.start(stale) // refresh in the background; these keys serve meanwhile
		}
		return found, nil
	}
	for {
		f, wait, joined := s.start(missing)
		if f == nil {
			if found, _ = s.lookup(kid, alg); len(found) > 0 {
				return found, nil // a fetch completed between the two lookups
			}
			return nil, s.throttled(wait)
		}
		err := s.wait(ctx, f)
		if found, _ = s.lookup(kid, alg); len(found) > 0 {
			return found, nil
		}
		if err != nil {
			return nil, err
		}
		if !joined {
			break
		}
		// f was in flight already: its request may predate the token and
		// so the key. Ask again: a fetch started now is after the token
		// (or the throttle answers 503).
	}
	// A fetch this call started, so after the token arrived, lacks the key:
	// the issuer does not publish it.
	return nil, &provider.InvalidTokenError{Provider: s.name, Reason: "signed with a key the issuer does not publish"}
}

// throttled is keysFor's answer when no fetch may start for wait more:
// the last attempt's error before any success, else "cannot verify now".
func (s *keySet) throttled(wait time.Duration) error {
	s.mu.RLock()
	lastErr, fetched := s.lastErr, s.fetched
	s.mu.RUnlock()
	if fetched.IsZero() && lastErr != nil {
		return lastErr
	}
	return &provider.UnavailableError{
		Provider:   s.name,
		Reason:     "signed with a key not cached, and the key set was fetched too recently to fetch it again",
		RetryAfter: wait,
	}
}

// lookup returns the cached keys fitting kid and alg, and whether the
// cache is younger than maxAge.
func (s *keySet) lookup(kid, alg string) ([]jose.JSONWebKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var found []jose.JSONWebKey
	for _, k := range s.keys {
		if (kid == "" || k.KeyID == kid) && (k.Algorithm == "" || k.Algorithm == alg) && fits(k.Key, alg) {
			found = append(found, k)
		}
	}
	return found, !s.fetched.IsZero() && s.now().Sub(s.fetched) < s.maxAge
}

// Why a fetch is wanted; each reason has its own throttle.
type fetchReason int

const (
	// missing: no key cached fits the token. Before the first success,
	// at most one attempt per firstFetchRetry; after it, at most one
	// refetch per refresh interval, however many such tokens arrive.
	missing fetchReason = iota
	// stale: the cached keys are older than maxAge. At most one attempt
	// per refresh interval; a failure leaves the cached keys in use.
	stale
)

// start returns the fetch in progress (joined: it began before this call),
// or begins one unless its reason's throttle says not yet: then it returns
// nil and how long until the throttle allows one.
func (s *keySet) start(why fetchReason) (_ *flight, wait time.Duration, joined bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flight != nil {
		return s.flight, 0, true
	}
	now := s.now()
	switch {
	case why == stale:
		if now.Sub(s.tried) < s.refresh {
			return nil, s.tried.Add(s.refresh).Sub(now), false
		}
	case s.fetched.IsZero():
		if !s.tried.IsZero() && now.Sub(s.tried) < firstFetchRetry {
			return nil, s.tried.Add(firstFetchRetry).Sub(now), false
		}
	default:
		if !s.missed.IsZero() && now.Sub(s.missed) < s.refresh {
			return nil, s.missed.Add(s.refresh).Sub(now), false
		}
		s.missed = now
	}
	s.tried = now
	s.flight = &flight{done: make(chan struct{})}
	go s.fetch(s.flight)
	return s.flight, 0, false
}

// wait waits for f or for ctx.
func (s *keySet) wait(ctx context.Context, f *flight) error {
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return &provider.UnavailableError{Provider: s.name, Reason: "gave up waiting for the issuer's keys", Err: ctx.Err()}
	}
}

// fetch downloads the key set, detached from every caller's context, and
// replaces the cache only with a set that has usable keys.
//
// A panic in the fetch (a custom HTTPClient's transport, say) is recovered
// and becomes this fetch's *provider.UnavailableError, stack included, for
// every waiter; the next fetch starts afresh.
func (s *keySet) fetch(f *flight) {
	var keys []jose.JSONWebKey
	var err error
	defer func() {
		if r := recover(); r != nil {
			keys, err = nil, provider.Panicked(s.name, "fetching the key set panicked", r)
		}
		s.finish(f, keys, err)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	keys, err = s.download(ctx)
}

// finish records a fetch's outcome and releases its waiters.
func (s *keySet) finish(f *flight, keys []jose.JSONWebKey, err error) {
	s.mu.Lock()
	if err == nil {
		s.keys, s.fetched = keys, s.now()
	}
	s.lastErr, s.flight = err, nil
	s.mu.Unlock()
	f.err = err
	close(f.done)
}

func (s *keySet) download(ctx context.Context) ([]jose.JSONWebKey, error) {
	url, err := s.locate(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, &provider.UnavailableError{Provider: s.name, Reason: "building the JWKS request failed", Err: err}
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, body, err := provider.Do(s.client, req, s.name)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, provider.StatusUnavailable(s.name, resp)
	}
	keys, err := parseKeySet(body)
	if err != nil {
		return nil, &provider.UnavailableError{Provider: s.name, Reason: "unusable JWKS", Err: err}
	}
	return keys, nil
}

// parseKeySet reads a JWKS document and keeps at most maxKeys public
// signing keys. Keys it cannot use are skipped rather than failing the set:
// an unknown type, "use" other than "sig", "key_ops" present without
// "verify", symmetric, RSA under 2048 bits or with a ROCA-weak modulus.
// Private parts, should an issuer publish them, are dropped. Member names
// are matched exactly ("KEYS" is not "keys", "KEY_OPS" not "key_ops"), and
// a document with duplicate member names anywhere is unusable as a whole.
// A set with no usable key is an error.
func parseKeySet(body []byte) ([]jose.JSONWebKey, error) {
	doc, err := strict.Object(body)
	if err != nil {
		return nil, fmt.Errorf("jwks: not a JSON key set: %w", err)
	}
	raws, ok := doc["keys"].([]any)
	if !ok {
		return nil, fmt.Errorf("jwks: no \"keys\" array")
	}
	var keys []jose.JSONWebKey
	for _, raw := range raws {
		k, ok := signingKey(raw)
		if !ok {
			continue
		}
		keys = append(keys, k)
		if len(keys) == maxKeys {
			break
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("jwks: no usable signing keys")
	}
	return keys, nil
}

// signingKey returns the public verification key a JWKS member describes,
// or false when it is not one sessiongate may verify with.
func signingKey(member any) (jose.JSONWebKey, bool) {
	obj, ok := member.(map[string]any)
	if !ok {
		return jose.JSONWebKey{}, false
	}
	if ops, present := obj["key_ops"]; present && !verifies(ops) {
		return jose.JSONWebKey{}, false // RFC 7517 §4.3: not for verifying
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return jose.JSONWebKey{}, false
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil || !k.Valid() || (k.Use != "" && k.Use != "sig") {
		return jose.JSONWebKey{}, false
	}
	if !k.IsPublic() {
		if k = k.Public(); !k.Valid() {
			return jose.JSONWebKey{}, false // symmetric: no public half
		}
	}
	if rsaKey, ok := k.Key.(*rsa.PublicKey); ok && (rsaKey.N.BitLen() < minRSABits || rocaWeak(rsaKey.N)) {
		return jose.JSONWebKey{}, false
	}
	return k, true
}

// verifies reports whether a "key_ops" value is an array of strings that
// includes "verify".
func verifies(ops any) bool {
	list, ok := ops.([]any)
	if !ok {
		return false
	}
	found := false
	for _, op := range list {
		s, ok := op.(string)
		if !ok {
			return false
		}
		found = found || s == "verify"
	}
	return found
}

// fits reports whether key can verify signatures made with alg.
func fits(key any, alg string) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		switch jose.SignatureAlgorithm(alg) {
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
			return true
		}
	case *ecdsa.PublicKey:
		switch jose.SignatureAlgorithm(alg) {
		case jose.ES256:
			return k.Curve == elliptic.P256()
		case jose.ES384:
			return k.Curve == elliptic.P384()
		case jose.ES512:
			return k.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return jose.SignatureAlgorithm(alg) == jose.EdDSA
	}
	return false
}
