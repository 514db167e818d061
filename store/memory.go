package store

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/format"
)

// memory is NewMemory's Store. It keeps values framed exactly as Redis
// does.
type memory struct {
	mu        sync.RWMutex
	sessions  map[string]item
	users     map[string]*userIndex
	lastSweep time.Time
	// SharedClock is the clock its entries are judged by: the first
	// engine's (backend.Clocked), time.Now before one is given.
	backend.SharedClock
	// fingerprint is the secret's fingerprint Check recorded, nil before.
	fingerprint []byte
	// entriesRead counts the index entries List has read: its work, which
	// the tests compare for users with few and many sessions.
	entriesRead atomic.Int64
}

type item struct {
	raw     []byte
	expires time.Time
}

func (it item) live(now time.Time) bool { return now.Before(it.expires) }

// NewMemory returns an empty Store in this process's memory: for a single
// process, tests and demos (processes cannot share it, it is lost on
// restart, and it has no size limit). It is never unavailable: none of
// its errors wraps ErrUnavailable, and its Check only compares secrets
// (see the middleware's Check and Revoker: processes, or middlewares of one
// process, that share a store must share a secret). Expired
// sessions and index entries are dropped when read and swept at most once
// a minute when a session is minted; nothing runs in the background.
// Expiry is judged by one clock: the Config.Now (or time.Now) of the
// first middleware or Revoker built on it, which every one built on it
// reads. It is safe for concurrent use.
func NewMemory() Store {
	return &memory{
		sessions: map[string]item{},
		users:    map[string]*userIndex{},
	}
}

// now reads the store's clock.
func (m *memory) now() time.Time { return backend.NowOf(&m.SharedClock) }

// Find returns the data of token's session, if it has not expired and
// token's validator opens it. It does not allocate.
func (m *memory) Find(token string) ([]byte, bool, error) {
	return backend.Find(token, func(key [format.KeyLen]byte) ([]byte, bool, error) {
		m.mu.RLock()
		it, found := m.sessions[string(key[:])]
		m.mu.RUnlock()
		return it.raw, found && it.live(m.now()), nil
	})
}

// Commit replaces the scs values and expiry of token's session if it is
// live and token's validator opens it; ErrNotLive otherwise. It never
// creates a session: see Store.
func (m *memory) Commit(token string, data []byte, expires time.Time) error {
	return m.update(token, nil, data, expires)
}

// Touch replaces the record of token's live session.
func (m *memory) Touch(_ context.Context, token string, record []byte) error {
	if err := m.update(token, record, nil, time.Time{}); err != ErrNotLive {
		return err
	}
	return nil
}

// update replaces the record or the values (nil: kept) of token's live
// session, and its expiry unless zero.
func (m *memory) update(token string, record, values []byte, expires time.Time) error {
	sel, val, ok := format.Split(token)
	if !ok {
		return ErrNotLive
	}
	key := sel.Key()
	m.mu.Lock()
	defer m.mu.Unlock()
	it, found := m.sessions[key]
	if !found || !it.live(m.now()) || !format.Opens(it.raw, val) || !format.Parse(it.raw).Live() {
		return ErrNotLive
	}
	if expires.IsZero() {
		expires = it.expires
	}
	m.sessions[key] = item{raw: format.Reframe(it.raw, record, values), expires: expires}
	return nil
}

// Delete returns ErrUnsupported: see Store.
func (m *memory) Delete(string) error { return ErrUnsupported }

// Lookup returns what is stored at key.
func (m *memory) Lookup(ctx context.Context, key string) (format.Stored, error) {
	return m.LookupAt(ctx, key, m.now())
}

// LookupAt returns what is stored at key at now (backend.LookupAt): the
// engine's clock reading, so that a steady request reads the clock once.
func (m *memory) LookupAt(_ context.Context, key string, now time.Time) (format.Stored, error) {
	m.mu.RLock()
	it, found := m.sessions[key]
	m.mu.RUnlock()
	if !found || !it.live(now) {
		return format.Stored{}, nil
	}
	return format.Parse(it.raw), nil
}

// Mint creates a session with its index entry, if its key still holds
// what s.Replace was read from and its credential was not signed out; it
// ends, as replaced, any other live session of s.User minted from the same
// credential, and, with s.Limit, the least recently used ones beyond the
// limit: all under one lock, so a user never has more than Limit.Max
// live sessions.
func (m *memory) Mint(_ context.Context, s backend.NewSession) error {
	if !s.Valid() {
		return backend.ErrBadMint
	}
	sel, val, _ := format.Split(s.Token)
	now := m.now()
	if !now.Before(s.Expires) {
		return backend.ErrExpired
	}
	key := sel.Key()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	var current []byte
	if it, found := m.sessions[key]; found && it.live(now) {
		current = it.raw
	}
	if !s.Replace.Same(current) {
		return backend.ErrConflict
	}
	if s.Mark != "" {
		if it, found := m.sessions[s.Mark]; found && it.live(now) && format.Parse(it.raw).Ended {
			return backend.ErrSignedOut
		}
	}
	if c := s.Continues; c != nil {
		it, found := m.sessions[c.Key]
		if !found || !it.live(now) || !format.Parse(it.raw).SameNonce(c.Nonce) {
			return backend.ErrNotContinued
		}
	}
	idx := m.users[s.User]
	if idx == nil {
		idx = newUserIndex()
		m.users[s.User] = idx
	}
	if s.Credential != (format.Credential{}) {
		for other := range idx.at {
			it, found := m.sessions[other]
			if other != key && found && format.Parse(it.raw).Live() && format.Parse(it.raw).Credential == s.Credential {
				delete(m.sessions, other)
				idx.remove(other)
			}
		}
	}
	if c := s.Continues; c != nil && c.Key != key {
		idx.remove(c.Key)
		delete(m.sessions, c.Key)
	}
	if l := s.Limit; l != nil && l.Max > 0 {
		m.limit(l, idx, key, now)
	}
	m.sessions[key] = item{raw: format.Frame(val, s.Nonce, s.Credential, s.Record, s.Data), expires: s.Expires}
	idx.add(key, s.Expires.UnixMilli())
	return nil
}

// limit ends, for the mint of key, the least recently used live sessions
// of idx beyond l.Max (see backend.Limit). m.mu is held.
func (m *memory) limit(l *backend.Limit, idx *userIndex, key string, now time.Time) {
	type candidate struct {
		key  string
		seen time.Time
		it   item
	}
	var live []candidate
	for other := range idx.at {
		it, found := m.sessions[other]
		if other == key || !found || !it.live(now) || !format.Parse(it.raw).Live() {
			continue
		}
		seen, _ := format.RecordLastSeen(format.Parse(it.raw).Record)
		live = append(live, candidate{other, seen, it})
	}
	slices.SortFunc(live, func(a, b candidate) int {
		if c := a.seen.Compare(b.seen); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	for i := 0; len(live)-i+1 > l.Max; i++ {
		c := live[i]
		m.sessions[c.key] = item{raw: format.Ended, expires: c.it.expires}
		idx.remove(c.key)
		l.Ended = append(l.Ended, backend.Entry{Key: c.key, Stored: format.Parse(c.it.raw)})
	}
}

// End marks sessions ended (or removes replaced ones) and drops them from
// their users' indexes.
func (m *memory) End(_ context.Context, ends ...backend.Ending) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range ends {
		switch {
		case e.Replaced:
			it, found := m.sessions[e.Key]
			if !found || !format.Parse(it.raw).SameNonce(e.Nonce) {
				continue // ended or minted anew meanwhile: not this session
			}
			delete(m.sessions, e.Key)
		case !now.Before(e.Until):
			delete(m.sessions, e.Key)
		default:
			m.sessions[e.Key] = item{raw: format.Ended, expires: e.Until}
			if e.Mark != "" {
				m.sessions[e.Mark] = item{raw: format.Ended, expires: e.Until}
			}
		}
		if idx := m.users[e.User]; idx != nil {
			idx.remove(e.Key)
			if idx.len() == 0 {
				delete(m.users, e.User)
			}
		}
	}
	return nil
}

// List returns a page of user's index: live sessions after the
// position after, latest expiry first. The index is kept in that order,
// so a page costs O(limit + log n) for a user with n sessions; expired
// entries, and entries whose session is gone, leave the index.
func (m *memory) List(_ context.Context, user string, after backend.Position, limit int) ([]backend.Entry, backend.Position, error) {
	limit = max(limit, 1)
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	idx := m.users[user]
	if idx == nil {
		return nil, backend.Position{}, nil
	}
	idx.dropExpired(now.UnixMilli())
	var (
		entries []backend.Entry
		last    indexEntry
		read    int
	)
	// Walk down from the entry just below after's place: entries removed
	// on the way are at or above the walk, so the next is still at i-1.
	for i := idx.place(after) - 1; i >= 0; i-- {
		if read == limit {
			m.entriesRead.Add(int64(read))
			return entries, backend.Position{Expires: last.expires, Key: last.key}, nil
		}
		read++
		last = idx.order[i]
		it, ok := m.sessions[last.key]
		s := format.Parse(it.raw)
		if !ok || !it.live(now) || !s.Live() {
			idx.removeAt(i)
			continue
		}
		entries = append(entries, backend.Entry{Key: last.key, Stored: s})
	}
	m.entriesRead.Add(int64(read))
	if idx.len() == 0 {
		delete(m.users, user)
	}
	return entries, backend.Position{}, nil
}

// Check records fingerprint when it has none and claim is set, and
// returns ErrSecretMismatch when it holds another one. A memory store is
// always reachable and set up right.
func (m *memory) Check(_ context.Context, fingerprint []byte, claim bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.fingerprint == nil && claim:
		m.fingerprint = bytes.Clone(fingerprint)
	case m.fingerprint != nil && subtle.ConstantTimeCompare(m.fingerprint, fingerprint) != 1:
		return ErrSecretMismatch
	}
	return nil
}

// sweep drops everything expired, at most once a minute. m.mu is held.
func (m *memory) sweep(now time.Time) {
	if !m.lastSweep.IsZero() && now.Sub(m.lastSweep) < time.Minute && !now.Before(m.lastSweep) {
		return
	}
	m.lastSweep = now
	for k, it := range m.sessions {
		if !it.live(now) {
			delete(m.sessions, k)
		}
	}
	for u, idx := range m.users {
		idx.dropExpired(now.UnixMilli())
		if idx.len() == 0 {
			delete(m.users, u)
		}
	}
}

// userIndex is a user's index: each key with its expiry (Unix ms), and
// the same entries in order (expiry, then key, ascending; List walks it
// down), so that a page is a binary search and a walk.
type userIndex struct {
	at    map[string]int64
	order []indexEntry
}

type indexEntry struct {
	expires int64
	key     string
}

func newUserIndex() *userIndex { return &userIndex{at: map[string]int64{}} }

func (x *userIndex) len() int { return len(x.order) }

// compare orders entries by expiry, then key.
func (a indexEntry) compare(b indexEntry) int {
	if a.expires != b.expires {
		return cmp.Compare(a.expires, b.expires)
	}
	return strings.Compare(a.key, b.key)
}

// find returns where e is, or would be, in order.
func (x *userIndex) find(e indexEntry) (int, bool) {
	return slices.BinarySearchFunc(x.order, e, indexEntry.compare)
}

// place returns how many entries come before p in List's walk (which goes
// down from the top): the index of the first entry at or above p, or
// len for the zero Position.
func (x *userIndex) place(p backend.Position) int {
	if p.IsZero() {
		return len(x.order)
	}
	i, _ := x.find(indexEntry{p.Expires, p.Key})
	return i
}

// add puts key in the index with expiry expires, replacing its entry.
func (x *userIndex) add(key string, expires int64) {
	x.remove(key)
	e := indexEntry{expires, key}
	i, _ := x.find(e)
	x.order = slices.Insert(x.order, i, e)
	x.at[key] = expires
}

// remove takes key out of the index, if it is there.
func (x *userIndex) remove(key string) {
	exp, ok := x.at[key]
	if !ok {
		return
	}
	if i, found := x.find(indexEntry{exp, key}); found {
		x.order = slices.Delete(x.order, i, i+1)
	}
	delete(x.at, key)
}

// removeAt takes the i-th entry of order out of the index.
func (x *userIndex) removeAt(i int) {
	delete(x.at, x.order[i].key)
	x.order = slices.Delete(x.order, i, i+1)
}

// dropExpired removes the entries that expire at or before now (Unix
// ms): the bottom of the order.
func (x *userIndex) dropExpired(now int64) {
	n, _ := slices.BinarySearchFunc(x.order, now, func(e indexEntry, now int64) int {
		if e.expires <= now {
			return -1
		}
		return 1
	})
	for _, e := range x.order[:n] {
		delete(x.at, e.key)
	}
	x.order = slices.Delete(x.order, 0, n)
}
