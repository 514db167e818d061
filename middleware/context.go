package middleware

import (
	"context"
	"sync/atomic"

	"github.com/sessiongate/sessiongate/internal/engine"
	"github.com/sessiongate/sessiongate/provider"
)

// stateKey is the context key of a request's *state.
var stateKey = &struct{ name string }{"sessiongate state"}

// state is the request's state: what the middleware decided for it. It is
// also the request's context (its parent's, plus itself under stateKey),
// so that adding it costs one allocation.
type state struct {
	context.Context

	// loaded is the request's live session, nil when it has none.
	loaded *engine.Loaded
	// err is why the session could not be loaded (the store was down),
	// for RequireSession to answer 503 rather than 401.
	err error
	// public is the session as SessionFrom hands it out, made on first
	// use.
	public atomic.Pointer[Session]
}

// withState makes st the child of ctx that carries it.
func withState(ctx context.Context, st *state) context.Context {
	st.Context = ctx
	return st
}

// Value returns st for stateKey, and ctx's values otherwise.
func (st *state) Value(key any) any {
	if key == stateKey {
		return st
	}
	return st.Context.Value(key)
}

func stateFrom(ctx context.Context) *state {
	st, _ := ctx.Value(stateKey).(*state)
	return st
}

// SessionFrom returns the session of the request whose context is ctx,
// and false when it has none (or the middleware did not run). The session
// is shared: do not modify it.
func SessionFrom(ctx context.Context) (*Session, bool) {
	st := stateFrom(ctx)
	if st == nil || st.loaded == nil {
		return nil, false
	}
	if s := st.public.Load(); s != nil {
		return s, true
	}
	st.public.CompareAndSwap(nil, newSession(st.loaded.Session, true))
	return st.public.Load(), true
}

// UserFrom returns who is calling: the Identity of the request's session,
// and false when the request has no session.
func UserFrom(ctx context.Context) (provider.Identity, bool) {
	st := stateFrom(ctx)
	if st == nil || st.loaded == nil {
		return provider.Identity{}, false
	}
	return st.loaded.Session.Identity, true
}
