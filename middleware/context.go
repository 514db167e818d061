package middleware

import (
	"context"

	"github.com/sessiongate/sessiongate/provider"
)

// SessionFrom returns the session of the request whose context is ctx,
// and false when it has none (or the middleware did not run). The session
// is shared: do not modify it.
func SessionFrom(ctx context.Context) (*Session, bool) {
	st := stateFrom(ctx)
	if st == nil || st.loaded.Session == nil {
		return nil, false
	}
	if s := st.public.Load(); s != nil {
		return s, true
	}
	v := view(st.loaded.Session, true)
	st.public.CompareAndSwap(nil, &v)
	return st.public.Load(), true
}

// UserFrom returns who is calling: the Identity of the request's session,
// and false when the request has no session.
func UserFrom(ctx context.Context) (provider.Identity, bool) {
	st := stateFrom(ctx)
	if st == nil || st.loaded.Session == nil {
		return provider.Identity{}, false
	}
	return st.loaded.Session.Identity, true
}
