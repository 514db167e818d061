package store

import (
	"context"
	"sync"
	"time"
)

// Memory is a Store in this process's memory: for a single process, tests
// and demos. Expired sessions and index entries are dropped when read and
// swept at most once a minute on write; nothing runs in the background.
// It keeps values framed exactly as Redis does. It is safe for concurrent
// use.
type Memory struct {
	mu        sync.RWMutex
	sessions  map[string]item
	users     map[string]map[string]time.Time
	lastSweep time.Time
}

type item struct {
	raw     []byte
	expires time.Time
}

func (it item) live(now time.Time) bool { return now.Before(it.expires) }

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		sessions:  map[string]item{},
		users:     map[string]map[string]time.Time{},
		lastSweep: time.Now(),
	}
}

// Find returns the data of token's session, if it has not expired.
func (m *Memory) Find(token string) ([]byte, bool, error) {
	return m.FindCtx(context.Background(), token)
}

// FindCtx returns the data of token's session, if it has not expired and
// token's validator opens it. It does not allocate.
func (m *Memory) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	return find(ctx, token, func(key [keyLen]byte) ([]byte, bool, error) {
		m.mu.RLock()
		it, found := m.sessions[string(key[:])]
		m.mu.RUnlock()
		return it.raw, found && it.live(time.Now()), nil
	})
}

// Commit replaces the data and expiry of token's session if it is live and
// token's validator opens it. It never creates a session: see Store.
func (m *Memory) Commit(token string, data []byte, expires time.Time) error {
	sel, val, ok := split(token)
	if !ok {
		return nil
	}
	key := KeyOf(sel)
	m.mu.Lock()
	defer m.mu.Unlock()
	it, found := m.sessions[key]
	if !found || !it.live(time.Now()) {
		return nil
	}
	if _, ok := open(it.raw, val); !ok {
		return nil
	}
	m.sessions[key] = item{raw: frame(val, it.raw[nonceAt:dataAt], data), expires: expires}
	return nil
}

// Delete removes token's session if token's validator opens it.
func (m *Memory) Delete(token string) error {
	sel, val, ok := split(token)
	if !ok {
		return nil
	}
	key := KeyOf(sel)
	m.mu.Lock()
	defer m.mu.Unlock()
	if it, found := m.sessions[key]; found {
		if _, ok := open(it.raw, val); ok {
			delete(m.sessions, key)
		}
	}
	return nil
}

// Lookup returns what is stored at key.
func (m *Memory) Lookup(_ context.Context, key string) (Stored, error) {
	m.mu.RLock()
	it, found := m.sessions[key]
	m.mu.RUnlock()
	if !found || !it.live(time.Now()) {
		return Stored{}, nil
	}
	return stored(it.raw), nil
}

// Mint creates a session with its index entry, if its key still holds
// what s.Replace was read from.
func (m *Memory) Mint(_ context.Context, s Mint) error {
	sel, val, ok := split(s.Token)
	if !ok || s.User == "" {
		return errBadMint
	}
	now := time.Now()
	if !now.Before(s.Expires) {
		return nil
	}
	key := KeyOf(sel)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	var current []byte
	if it, found := m.sessions[key]; found && it.live(now) {
		current = it.raw
	}
	if !s.Replace.same(current) {
		return ErrConflict
	}
	m.sessions[key] = item{raw: frame(val, s.Nonce, s.Data), expires: s.Expires}
	idx := m.users[s.User]
	if idx == nil {
		idx = map[string]time.Time{}
		m.users[s.User] = idx
	}
	idx[key] = s.Expires
	return nil
}

// End marks sessions ended and drops them from their users' indexes.
func (m *Memory) End(_ context.Context, ends ...End) error {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range ends {
		if now.Before(e.Until) {
			m.sessions[e.Key] = item{raw: ended, expires: e.Until}
		} else {
			delete(m.sessions, e.Key)
		}
		if idx := m.users[e.User]; idx != nil {
			delete(idx, e.Key)
			if len(idx) == 0 {
				delete(m.users, e.User)
			}
		}
	}
	return nil
}

// Sessions returns user's live sessions.
func (m *Memory) Sessions(_ context.Context, user string) ([]Entry, error) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	idx := m.users[user]
	entries := make([]Entry, 0, len(idx))
	for key := range idx {
		it, ok := m.sessions[key]
		s := stored(it.raw)
		if !ok || !it.live(now) || !s.Live() {
			delete(idx, key)
			continue
		}
		entries = append(entries, Entry{Key: key, Data: s.Data})
	}
	if idx != nil && len(idx) == 0 {
		delete(m.users, user)
	}
	return entries, nil
}

// Ping always succeeds.
func (m *Memory) Ping(context.Context) error { return nil }

// sweep drops everything expired, at most once a minute. m.mu is held.
func (m *Memory) sweep(now time.Time) {
	if now.Sub(m.lastSweep) < time.Minute {
		return
	}
	m.lastSweep = now
	for k, it := range m.sessions {
		if !it.live(now) {
			delete(m.sessions, k)
		}
	}
	for u, idx := range m.users {
		for k, exp := range idx {
			if !now.Before(exp) {
				delete(idx, k)
			}
		}
		if len(idx) == 0 {
			delete(m.users, u)
		}
	}
}
