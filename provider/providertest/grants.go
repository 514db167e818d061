package providertest

import (
	"sync"
	"time"
)

// grants are the opaque tokens a fake issued, each standing for a T until
// it expires or is revoked. The zero value is empty and ready; it is safe
// for concurrent use.
type grants[T any] struct {
	mu      sync.Mutex
	byToken map[string]grant[T]
}

type grant[T any] struct {
	value   T
	expires time.Time
}

// issue returns a new random token of length characters standing for
// value until expires.
func (g *grants[T]) issue(length int, value T, expires time.Time) string {
	token := randomString(length)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.byToken == nil {
		g.byToken = map[string]grant[T]{}
	}
	g.byToken[token] = grant[T]{value: value, expires: expires}
	return token
}

// revoke forgets token.
func (g *grants[T]) revoke(token string) {
	g.mu.Lock()
	delete(g.byToken, token)
	g.mu.Unlock()
}

// live returns what token stands for, and false when it was never issued,
// was revoked or has expired.
func (g *grants[T]) live(token string) (T, bool) {
	g.mu.Lock()
	got, ok := g.byToken[token]
	g.mu.Unlock()
	if !ok || !time.Now().Before(got.expires) {
		var zero T
		return zero, false
	}
	return got.value, true
}
