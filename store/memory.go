package store

import (
	"bytes"
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

// Commit replaces the scs values and expiry of token's session if it is
// live and token's validator opens it; ErrNotLive otherwise. It never
// creates a session: see Store.
func (m *Memory) Commit(token string, data []byte, expires time.Time) error {
	return m.update(token, nil, data, expires)
}

// Touch replaces the record of token's live session.
func (m *Memory) Touch(_ context.Context, token string, record []byte) error {
	if err := m.update(token, record, nil, time.Time{}); err != ErrNotLive {
		return err
	}
	return nil
}

// update replaces the record or the values (nil: kept) of token's live
// session, and its expiry unless zero.
func (m *Memory) update(token string, record, values []byte, expires time.Time) error {
	sel, val, ok := split(token)
	if !ok {
		return ErrNotLive
	}
	key := KeyOf(sel)
	m.mu.Lock()
	defer m.mu.Unlock()
	it, found := m.sessions[key]
	if !found || !it.live(time.Now()) || !opens(it.raw, val) || !stored(it.raw).Live() {
		return ErrNotLive
	}
	if expires.IsZero() {
		expires = it.expires
	}
	m.sessions[key] = item{raw: reframe(it.raw, record, values), expires: expires}
	return nil
}

// Delete returns ErrUnsupported: see Store.
func (m *Memory) Delete(string) error { return ErrUnsupported }

// AllCtx returns ErrUnsupported: scs's Iterate is not supported (see
// Store). It is here so that Iterate fails with an error, not a panic.
func (m *Memory) AllCtx(context.Context) (map[string][]byte, error) { return nil, ErrUnsupported }

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
// what s.Replace was read from and its credential was not signed out; it
// ends, as replaced, any other live session of s.User minted from the same
// credential.
func (m *Memory) Mint(_ context.Context, s Mint) error {
	sel, val, ok := split(s.Token)
	if !ok || s.User == "" || s.Record == nil || len(s.Record) > MaxRecordLen {
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
	if s.Mark != "" {
		if it, found := m.sessions[s.Mark]; found && it.live(now) && stored(it.raw).Ended {
			return ErrSignedOut
		}
	}
	if c := s.Continues; c != nil {
		it, found := m.sessions[c.Key]
		if !found || !it.live(now) || !stored(it.raw).Live() || !bytes.Equal(stored(it.raw).Nonce, padNonce(c.Nonce)) {
			return ErrNotContinued
		}
	}
	idx := m.users[s.User]
	if idx == nil {
		idx = map[string]time.Time{}
		m.users[s.User] = idx
	}
	if s.Credential != ([CredentialLen]byte{}) {
		for other := range idx {
			it, found := m.sessions[other]
			if other != key && found && stored(it.raw).Live() && stored(it.raw).Credential == s.Credential {
				delete(m.sessions, other)
				delete(idx, other)
			}
		}
	}
	if c := s.Continues; c != nil && c.Key != key {
		delete(idx, c.Key)
		delete(m.sessions, c.Key)
	}
	m.sessions[key] = item{raw: frame(val, s.Nonce, s.Credential, s.Record, s.Data), expires: s.Expires}
	idx[key] = s.Expires
	return nil
}

// End marks sessions ended (or removes replaced ones) and drops them from
// their users' indexes.
func (m *Memory) End(_ context.Context, ends ...End) error {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range ends {
		switch {
		case e.Replaced:
			it, found := m.sessions[e.Key]
			if !found || !bytes.Equal(stored(it.raw).Nonce, padNonce(e.Nonce)) || !stored(it.raw).Live() {
				continue // ended or minted anew meanwhile: not this session
			}
			delete(m.sessions, e.Key)
		case !now.Before(e.Until):
			delete(m.sessions, e.Key)
		default:
			m.sessions[e.Key] = item{raw: ended, expires: e.Until}
			if e.Mark != "" {
				m.sessions[e.Mark] = item{raw: ended, expires: e.Until}
			}
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
		entries = append(entries, Entry{Key: key, Record: s.Record, Data: s.Data, Nonce: s.Nonce, Credential: s.Credential})
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
