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
// none fits and the refresh interval allows. It fails with ErrInvalidToken
// when the issuer has no such key, and ErrUnavailable when the keys could
// not be had.
func (s *keySet) keysFor(ctx context.Context, kid, alg string) ([]jose.JSONWebKey, error) {
	found, fresh := s.lookup(kid, alg)
	if len(found) > 0 {
		if !fresh {
			s.start(stale) // refresh in the background; these keys serve meanwhile
		}
		return found, nil
	}
	err := s.wait(ctx, s.start(missing))
	if found, _ = s.lookup(kid, alg); len(found) > 0 {
		return found, nil
	}
	if err != nil {
		return nil, err
	}
	return nil, &provider.InvalidTokenError{Provider: s.name, Reason: "signed with a key the issuer does not publish"}
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

// start returns the fetch in progress, or begins one unless its reason's
// throttle says not yet (then it returns nil).
func (s *keySet) start(why fetchReason) *flight {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flight != nil {
		return s.flight
	}
	now := s.now()
	switch {
	case why == stale:
		if now.Sub(s.tried) < s.refresh {
			return nil
		}
	case s.fetched.IsZero():
		if !s.tried.IsZero() && now.Sub(s.tried) < firstFetchRetry {
			return nil
		}
	default:
		if !s.missed.IsZero() && now.Sub(s.missed) < s.refresh {
			return nil
		}
		s.missed = now
	}
	s.tried = now
	s.flight = &flight{done: make(chan struct{})}
	go s.fetch(s.flight)
	return s.flight
}

// wait waits for f (nil: the last attempt's outcome) or for ctx.
func (s *keySet) wait(ctx context.Context, f *flight) error {
	if f == nil {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.lastErr
	}
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return &provider.UnavailableError{Provider: s.name, Reason: "gave up waiting for the issuer's keys", Err: ctx.Err()}
	}
}

// fetch downloads the key set, detached from every caller's context, and
// replaces the cache only with a set that has usable keys.
func (s *keySet) fetch(f *flight) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	keys, err := s.download(ctx)
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
// signing keys. Keys it cannot use (unknown type, "use": "enc", symmetric,
// RSA under 2048 bits) are skipped rather than failing the set; private
// parts, should an issuer publish them, are dropped. A set with no usable
// key is an error.
func parseKeySet(body []byte) ([]jose.JSONWebKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("jwks: not a JSON key set: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil || !k.Valid() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if !k.IsPublic() {
			k = k.Public()
			if !k.Valid() {
				continue // symmetric: no public half
			}
		}
		if rsaKey, ok := k.Key.(*rsa.PublicKey); ok && rsaKey.N.BitLen() < minRSABits {
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
