package middleware

import (
	"bytes"
	"strings"
	"sync"
)

// maxCachedRecords bounds the decoded-record cache: about a kilobyte each.
const maxCachedRecords = 8192

// recordCache keeps the last decoded Session of each recently seen session,
// so that a steady-state request decodes nothing. An entry is used only
// while the stored record is byte for byte the one it was decoded from: a
// keep-alive or a new mint changes the bytes and the entry with them. It
// is keyed by the token's first 21 characters, which encode only the
// selector (the part that names the session, not the part that opens it):
// no secret is kept.
type recordCache struct {
	mu sync.RWMutex
	m  map[string]cachedRecord
}

type cachedRecord struct {
	raw []byte
	s   *Session
}

const cacheKeyLen = 21 // 21 × 6 bits of the 128-bit selector

func newRecordCache() *recordCache {
	return &recordCache{m: map[string]cachedRecord{}}
}

// get returns the Session decoded from raw for token, nil when it is not
// cached.
func (c *recordCache) get(token string, raw []byte) *Session {
	c.mu.RLock()
	e, ok := c.m[token[:cacheKeyLen]]
	c.mu.RUnlock()
	if !ok || !bytes.Equal(e.raw, raw) {
		return nil
	}
	return e.s
}

// put caches s, decoded from raw (which it keeps: raw must not change).
// When full, it drops a quarter of the entries, whichever the map yields.
func (c *recordCache) put(token string, raw []byte, s *Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedRecords {
		for k := range c.m {
			delete(c.m, k)
			if len(c.m) < maxCachedRecords*3/4 {
				break
			}
		}
	}
	c.m[strings.Clone(token[:cacheKeyLen])] = cachedRecord{raw: raw, s: s}
}
