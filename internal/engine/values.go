package engine

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/alexedwards/scs/v2"
)

// RequestValues is the scs session of one request: for a request with a
// session, the handlers' values that Load read with it, decoded for scs
// when a handler first uses them (most requests never do, and then cost
// no decoding and no scs context); for a request without one, an empty
// session that is never saved. It is part of the request's context: the
// context's Value method hands scs's context key to Value. Init it
// before use; it is safe for concurrent use after.
type RequestValues struct {
	e *Engine
	// read is the session Load read (its token and values), for
	// valueStore's FindCtx; its token is "" without a session. Its
	// Context is the request's parent context (one field for both: the
	// request's state is one allocation, and smaller is cheaper).
	read prefetched

	once sync.Once
	// data is scs's session data (its context value) once loaded.
	data any
	// used is set once the values are loaded; broken when they could
	// not be, and an empty session stands in that must not be saved.
	used, broken atomic.Bool
	// eager is the context scs loaded the values in, when scs's context
	// key could not be learnt (scsKey nil): then every key is asked of it.
	eager context.Context
}

// Init readies v for a request whose context is parent and whose session
// is l (nil or zero: none).
func (v *RequestValues) Init(e *Engine, parent context.Context, l *Loaded) {
	v.e = e
	v.read.Context = parent
	if l != nil && l.Session != nil {
		v.read.token, v.read.values = l.Token, l.values
	}
	if e.scsKey == nil {
		v.once.Do(v.load)
	}
}

// Value returns the request's scs session data for scs's context key,
// loading it on first use, the session Load read for prefetchKey (scs
// looks a token up in the request's context to merge it: FindCtx), and
// handled false for any other key (the request's context answers those
// from its parent).
func (v *RequestValues) Value(key any) (_ any, handled bool) {
	switch {
	case v.eager != nil:
		return v.eager.Value(key), true
	case key == nil:
		return nil, false
	case key == v.e.scsKey:
		v.once.Do(v.load)
		return v.data, true
	case key == (prefetchKey{}) && v.read.token != "":
		return &v.read, true
	}
	return nil, false
}

// load has scs load the request's session from the values Load read.
func (v *RequestValues) load() {
	ctx := v.read.Context // the parent
	if v.read.token != "" {
		ctx = &v.read
	}
	loaded, err := v.e.values.Load(ctx, v.read.token)
	if err != nil {
		// Load checked that the values decode: this cannot happen. The
		// handler gets an empty session, which is never saved over the
		// stored values.
		v.e.cfg.Logger.Error("sessiongate: session values could not be loaded; the handler gets none", "error", err)
		v.broken.Store(true)
		loaded, _ = v.e.values.Load(v.read.Context, "")
	}
	if v.e.scsKey == nil {
		v.eager = loaded
	} else {
		v.data = loaded.Value(v.e.scsKey)
	}
	v.used.Store(true)
}

// saveable reports whether a handler may have changed the values: they
// were loaded, and loaded from the store.
func (v *RequestValues) saveable() bool {
	return v != nil && v.used.Load() && !v.broken.Load()
}

// keyProbe is a context that records the first key it is asked for.
type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(key any) any {
	if p.key == nil {
		p.key = key
	}
	return p.Context.Value(key)
}

// scsKeyOf returns the context key under which sm keeps a request's
// session data, nil if it cannot be learnt (another scs than the one
// sessiongate was built with: RequestValues then loads every request's
// values at once, as scs itself would). scs's Load asks its context for
// that key first, to find a session already loaded.
func scsKeyOf(sm *scs.SessionManager) any {
	p := &keyProbe{Context: context.Background()}
	ctx, err := sm.Load(p, "")
	if err != nil || p.key == nil || ctx.Value(p.key) == nil {
		return nil
	}
	return p.key
}
