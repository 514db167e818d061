package engine

import (
	"bytes"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/sessiongate/sessiongate/internal/format"
)

// negativeCacheSize bounds the negative cache: a client sending endless
// distinct bad tokens cannot grow it past this many entries (the least
// recently used go first).
const negativeCacheSize = 10_000

// negativeCache remembers the store keys of frontend tokens the provider
// rejected, until a deadline read from the injected clock. Safe for
// concurrent use.
type negativeCache struct {
	ttl     time.Duration
	now     func() time.Time
	entries *lru.Cache[string, time.Time]
}

func newNegativeCache(ttl time.Duration, now func() time.Time) *negativeCache {
	entries, _ := lru.New[string, time.Time](negativeCacheSize) // errors only for a size <= 0
	return &negativeCache{ttl: ttl, now: now, entries: entries}
}

// rejected reports whether key was rejected less than ttl ago.
func (c *negativeCache) rejected(key string) bool {
	if c.ttl <= 0 {
		return false
	}
	until, ok := c.entries.Get(key)
	if ok && !c.now().Before(until) {
		c.entries.Remove(key)
		return false
	}
	return ok
}

// add remembers key as rejected.
func (c *negativeCache) add(key string) {
	if c.ttl > 0 {
		c.entries.Add(key, c.now().Add(c.ttl))
	}
}

// maxCachedRecords bounds the decoded-record cache: about a kilobyte each.
const maxCachedRecords = 8192

// cacheKeyLen is how much of a session token keys the record cache: 21 ×
// 6 bits of the 128-bit selector, none of the validator.
const cacheKeyLen = 21

// recordCache keeps the last decoded session of each recently seen one,
// so that a steady-state request decodes nothing. An entry is used only
// while the stored record is byte for byte the one it was decoded from: a
// keep-alive or a new mint changes the bytes and the entry with them. It
// is keyed by the selector part of the session token (the part that names
// the session, not the part that opens it): no secret is kept.
type recordCache struct {
	entries *lru.Cache[string, cachedRecord]
}

type cachedRecord struct {
	raw []byte
	s   *format.Session
}

func newRecordCache() *recordCache {
	entries, _ := lru.New[string, cachedRecord](maxCachedRecords)
	return &recordCache{entries: entries}
}

// get returns the session decoded from raw for token, nil when it is not
// cached.
func (c *recordCache) get(token string, raw []byte) *format.Session {
	e, ok := c.entries.Get(token[:cacheKeyLen])
	if !ok || !bytes.Equal(e.raw, raw) {
		return nil
	}
	return e.s
}

// put caches s, decoded from raw (which it keeps: raw must not change).
func (c *recordCache) put(token string, raw []byte, s *format.Session) {
	// A copy: a slice of token would keep the whole token, validator
	// included, alive in the cache.
	c.entries.Add(strings.Clone(token[:cacheKeyLen]), cachedRecord{raw: raw, s: s})
}
