package middleware

import (
	"sync"
	"time"
)

// negativeCacheSize bounds the negative cache: a client sending endless
// distinct bad tokens cannot grow it past this many entries.
const negativeCacheSize = 10_000

// negativeCache remembers token keys the provider rejected until a
// deadline. Safe for concurrent use.
type negativeCache struct {
	ttl     time.Duration
	now     func() time.Time
	mu      sync.Mutex
	entries map[string]time.Time
}

func newNegativeCache(ttl time.Duration, now func() time.Time) *negativeCache {
	return &negativeCache{ttl: ttl, now: now, entries: map[string]time.Time{}}
}

// rejected reports whether key was rejected less than ttl ago.
func (c *negativeCache) rejected(key string) bool {
	if c.ttl <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.entries[key]
	if ok && !c.now().Before(until) {
		delete(c.entries, key)
		return false
	}
	return ok
}

// add remembers key as rejected. When the cache is full it first drops
// expired entries, then arbitrary ones.
func (c *negativeCache) add(key string) {
	if c.ttl <= 0 {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= negativeCacheSize {
		for k, until := range c.entries {
			if !now.Before(until) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < negativeCacheSize {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[key] = now.Add(c.ttl)
}
