package engine

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"slices"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/format"
)

// ErrBadCursor is returned by ListPage for a cursor it did not issue for
// that user's listing: malformed, forged, altered, another user's, or
// sealed with another secret.
var ErrBadCursor = errors.New("sessiongate: the listing cursor is not valid")

// listAllPage is the page size of the walks that read every session of
// a user (List): a bound on each store command, not on the walk.
const listAllPage = 500

// List returns every live session of one user of one provider, exactly
// (each session's record names its provider and user), newest first,
// read through the user's index a page at a time: the cost grows with
// that user's sessions only, whatever the store holds.
func (e *Engine) List(ctx context.Context, providerName, userID string) ([]*format.Session, error) {
	var (
		out   []*format.Session
		after backend.Position
	)
	for {
		page, next, err := e.listPage(ctx, providerName, userID, after, listAllPage)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if next.IsZero() {
			break
		}
		after = next
	}
	slices.SortFunc(out, func(x, y *format.Session) int { return y.Created.Compare(x.Created) })
	return out, nil
}

// ListPage returns one page of the live sessions of one user of one
// provider: those among the next limit (at least 1) entries of the
// user's index after cursor ("" for the first page), latest expiry first
// (for sessions of one Lifetime, newest first), and the cursor of the
// next page, "" after the last. A page may hold fewer than limit sessions
// (entries of ended or idle sessions are skipped), even none, with a
// next cursor: only an empty next ends the listing. A page costs
// O(limit) store work, whatever the number of the user's sessions.
//
// The cursor is opaque: the position of the page's last entry (its
// expiry and store key), encrypted and authenticated with a key derived
// from the secret and bound to the user, so it shows clients no store
// key and cannot be forged or moved to another user's listing
// (ErrBadCursor). Processes that share the store and the secret read each
// other's cursors. A walk of every page lists each session that lives
// throughout exactly once, whatever is minted or ended meanwhile.
func (e *Engine) ListPage(ctx context.Context, providerName, userID, cursor string, limit int) (_ []*format.Session, next string, err error) {
	user := format.UserIndex(providerName, userID)
	after, ok := openCursor(e.cfg.Secret, user, cursor)
	if !ok {
		return nil, "", ErrBadCursor
	}
	page, pos, err := e.listPage(ctx, providerName, userID, after, limit)
	if err != nil || pos.IsZero() {
		return page, "", err
	}
	return page, sealCursor(e.cfg.Secret, user, pos), nil
}

// listPage reads one page of the user's index (backend.Backend.List) and
// keeps that user's live sessions.
func (e *Engine) listPage(ctx context.Context, providerName, userID string, after backend.Position, limit int) (_ []*format.Session, next backend.Position, err error) {
	defer e.recoverInto(&err, "store")
	entries, next, err := e.cfg.Store.List(ctx, format.UserIndex(providerName, userID), after, limit)
	if err != nil {
		e.storeFailed(ctx, ListRead, err)
		return nil, backend.Position{}, err
	}
	now := e.cfg.Now()
	out := make([]*format.Session, 0, len(entries))
	for _, en := range entries {
		s, err := format.DecodeRecord(en.Key, en.Stored)
		if err != nil || !e.live(s, now) {
			continue
		}
		if s.Identity.Provider != providerName || s.Identity.UserID != userID {
			// The index's name joins provider and user with ":", so
			// ("p", "a:b") and ("p:a", "b") share one: each session says
			// whose it is, and only those of this user are theirs.
			continue
		}
		out = append(out, s)
	}
	return out, next, nil
}

// A cursor is base64url (no padding) of: a version byte, then the
// position (its expiry, 8 bytes big-endian, and its key) sealed with
// AES-256-GCM under a key derived from the secret, with a random nonce
// and the version and the user's index as additional data: the key never
// appears in clear, a cursor altered in any bit does not open, and a
// cursor opens only for the user it was sealed for.
const (
	cursorVersion = 2
	// maxCursorLen bounds what is decoded at all: a position's key is 22
	// bytes, and a store's members never exceed this.
	maxCursorLen = 128
)

// sealCursor returns the cursor of position p of user's index.
func sealCursor(secret *format.Secret, user string, p backend.Position) string {
	aead := cursorAEAD(secret)
	plain := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(p.Key)), uint64(p.Expires))
	plain = append(plain, p.Key...)
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plain)+aead.Overhead())
	out[0] = cursorVersion
	rand.Read(out[1:]) // never fails (crypto/rand)
	out = aead.Seal(out, out[1:], plain, cursorAD(user))
	return base64.RawURLEncoding.EncodeToString(out)
}

// openCursor returns the position cursor names in user's index: the zero
// Position for "", false for anything sealCursor did not return for that
// user with this secret.
func openCursor(secret *format.Secret, user, cursor string) (backend.Position, bool) {
	if cursor == "" {
		return backend.Position{}, true
	}
	if len(cursor) > maxCursorLen {
		return backend.Position{}, false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(cursor)
	aead := cursorAEAD(secret)
	if err != nil || len(raw) < 1+aead.NonceSize()+aead.Overhead()+8+1 || raw[0] != cursorVersion {
		return backend.Position{}, false
	}
	nonce, sealed := raw[1:1+aead.NonceSize()], raw[1+aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, sealed, cursorAD(user))
	if err != nil {
		return backend.Position{}, false
	}
	return backend.Position{Expires: int64(binary.BigEndian.Uint64(plain)), Key: string(plain[8:])}, true
}

// cursorAEAD is the cursor's AES-256-GCM, keyed by the secret's cursor
// key.
func cursorAEAD(secret *format.Secret) cipher.AEAD {
	block, err := aes.NewCipher(secret.CursorKey())
	if err != nil {
		panic(err) // unreachable: a 32-byte key
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err) // unreachable: AES's block size
	}
	return aead
}

// cursorAD is the additional data a cursor of user's index is sealed
// with.
func cursorAD(user string) []byte {
	return append([]byte{cursorVersion}, user...)
}
