package store

import (
	"context"
	"sync"
	"time"
)

// Memory is a Store in this process's memory: for a single process, tests
// and demos. Expired sessions, links and index entries are dropped when read
// and swept at most once a minute on write; nothing runs in the background.
// It is safe for concurrent use.
type Memory struct {
	mu        sync.RWMutex
	sessions  map[string]item
	links     map[string]item
	users     map[string]map[string]time.Time
	lastSweep time.Time
}

type item struct {
	data    []byte
	expires time.Time
}

func (it item) live(now time.Time) bool { return now.Before(it.expires) }

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		sessions:  map[string]item{},
		links:     map[string]item{},
		users:     map[string]map[string]time.Time{},
		lastSweep: time.Now(),
	}
}

// Find returns the data of the session at key, if it has not expired.
func (m *Memory) Find(key string) ([]byte, bool, error) {
	return m.get(m.sessions, key)
}

// Commit updates the data and expiry of the session at key if it exists.
// It never creates a session: see Store.
func (m *Memory) Commit(key string, data []byte, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if it, ok := m.sessions[key]; ok && it.live(time.Now()) {
		m.sessions[key] = item{data: data, expires: expires}
	}
	return nil
}

// Delete removes the session at key.
func (m *Memory) Delete(key string) error {
	m.mu.Lock()
	delete(m.sessions, key)
	m.mu.Unlock()
	return nil
}

// Mint creates a session with its index entry and link.
func (m *Memory) Mint(_ context.Context, s Mint) error {
	now := time.Now()
	if !now.Before(s.Expires) {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	m.sessions[s.Key] = item{data: s.Data, expires: s.Expires}
	if s.User != "" {
		idx := m.users[s.User]
		if idx == nil {
			idx = map[string]time.Time{}
			m.users[s.User] = idx
		}
		idx[s.Key] = s.Expires
	}
	if s.LinkKey != "" {
		m.links[s.LinkKey] = item{data: s.Link, expires: s.Expires}
	}
	return nil
}

// Link returns the value of the link at key.
func (m *Memory) Link(_ context.Context, key string) ([]byte, bool, error) {
	return m.get(m.links, key)
}

// End deletes sessions, their index entries, and tombstones their links.
func (m *Memory) End(_ context.Context, ends ...End) error {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range ends {
		delete(m.sessions, e.Key)
		if idx := m.users[e.User]; idx != nil {
			delete(idx, e.Key)
			if len(idx) == 0 {
				delete(m.users, e.User)
			}
		}
		if e.LinkKey == "" {
			continue
		}
		if now.Before(e.TombstoneExpires) {
			m.links[e.LinkKey] = item{data: e.Tombstone, expires: e.TombstoneExpires}
		} else {
			delete(m.links, e.LinkKey)
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
		if !ok || !it.live(now) {
			delete(idx, key)
			continue
		}
		entries = append(entries, Entry{Key: key, Data: it.data})
	}
	if idx != nil && len(idx) == 0 {
		delete(m.users, user)
	}
	return entries, nil
}

// Ping always succeeds.
func (m *Memory) Ping(context.Context) error { return nil }

// get reads a live item of items.
func (m *Memory) get(items map[string]item, key string) ([]byte, bool, error) {
	m.mu.RLock()
	it, ok := items[key]
	m.mu.RUnlock()
	if !ok || !it.live(time.Now()) {
		return nil, false, nil
	}
	return it.data, true, nil
}

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
	for k, it := range m.links {
		if !it.live(now) {
			delete(m.links, k)
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
