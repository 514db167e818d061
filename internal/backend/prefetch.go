package backend

import (
	"context"

	"github.com/sessiongate/sessiongate/internal/format"
)

// prefetchKey is the context key of a Prefetched value.
type prefetchKey struct{}

type prefetched struct {
	key string
	s   format.Stored
}

// Prefetched returns a context in which finding key's session (FindCtx,
// which scs's Load calls) answers from s instead of reading the store
// again: for a caller that has just looked the session up.
func Prefetched(ctx context.Context, key string, s format.Stored) context.Context {
	return context.WithValue(ctx, prefetchKey{}, &prefetched{key: key, s: s})
}

// Find is FindCtx for any store: the scs values of token's session, from
// ctx's Prefetched value or else from get (which reads the raw value at a
// key), if token's validator opens it.
func Find(ctx context.Context, token string, get func(key [format.KeyLen]byte) (raw []byte, found bool, err error)) ([]byte, bool, error) {
	sel, val, ok := format.Split(token)
	if !ok {
		return nil, false, nil
	}
	key := sel.KeyBytes()
	var raw []byte
	if p, isP := ctx.Value(prefetchKey{}).(*prefetched); isP && p.key == string(key[:]) && p.s.Live() {
		raw = p.s.Raw()
	} else {
		var err error
		if raw, ok, err = get(key); err != nil || !ok {
			return nil, false, err
		}
	}
	if !format.Opens(raw, val) {
		return nil, false, nil
	}
	return format.Parse(raw).Data, true, nil
}

// Open returns the live session that token opens in b, with one read of
// b: a Stored that is not Live when there is none (not found is not an
// error). Pass the result to Prefetched so that scs's Load does not read
// again.
func Open(ctx context.Context, b Backend, token string) (format.Stored, error) {
	sel, val, ok := format.Split(token)
	if !ok {
		return format.Stored{}, nil
	}
	s, err := b.Lookup(ctx, sel.Key())
	if err != nil || !s.Live() || !format.Opens(s.Raw(), val) {
		return format.Stored{}, err
	}
	return s, nil
}
