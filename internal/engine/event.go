package engine

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/internal/guesslimit"
	"github.com/sessiongate/sessiongate/provider"
)

// Kind is what an Event tells of. Package middleware exports the same
// values as middleware.EventKind (keep the two lists in step).
type Kind uint8

// The kinds of events. The operations (Exchange, Upstream, StoreWrite)
// are begun with Observer.Begin and end with an event of their kind.
const (
	KindReused        Kind = iota + 1 // a request's session served as it was
	KindExchanged                     // a frontend token answered with the session it already had
	KindMinted                        // a new session (Reason Continued: a device's session continued)
	KindRejected                      // credentials refused; Reason says why
	KindEnded                         // a session ended; Reason says why
	KindRateLimited                   // a request refused with 429
	KindClientLimited                 // a client's failures started a lockout
	KindStoreError                    // the store failed an operation
	KindExchange                      // operation: one exchange of a frontend token
	KindUpstream                      // operation: one provider call
	KindStoreWrite                    // operation: one store write; Reason says which
)

// More reasons, besides the reasons sessions end (end.go): why a
// session ended unseen, why credentials were refused, how an exchange or
// an upstream call went, which store write it was.
const (
	Continued    Reason = "continued"     // the same device signed in again: its session goes on under a new token
	Expired      Reason = "expired"       // a session seen past its lifetime or idle timeout; a token expired
	SessionLimit Reason = "session limit" // ended for a newer session of its user (MaxSessionsPerUser)

	Malformed        Reason = "malformed"
	Invalid          Reason = "invalid"
	RejectedRecently Reason = "rejected recently"
	CrossOrigin      Reason = "cross-origin"

	Minted      Reason = "minted"       // an exchange that minted (or shared a mint)
	Existing    Reason = "existing"     // an exchange answered with the token's session
	Valid       Reason = "valid"        // an upstream call that accepted the token
	Unavailable Reason = "unavailable"  // the provider or the store could not answer
	Limited     Reason = "rate limited" // no turn for a limited client
	Canceled    Reason = "canceled"     // the client left before the answer: not an outage

	WriteMint   Reason = "mint"
	WriteEnd    Reason = "end"
	WriteTouch  Reason = "touch"
	WriteValues Reason = "values"
	Read        Reason = "read"
	ListRead    Reason = "list"
)

// Event is one thing the engine or the middleware did. It carries public
// session ids, user ids and provider names, never a token, a store key or
// a secret.
type Event struct {
	Kind Kind
	// Time is when it happened; for an operation's end, when it began.
	// Emit leaves it zero when its caller did: the observer stamps it
	// when it needs it (reading the clock costs a steady request more
	// than anything else it does once).
	Time time.Time
	// Duration is an operation's, measured on the monotonic clock; zero
	// when the observer does not time its kind (Observer.Timed).
	Duration time.Duration
	// Session is the public session id, User and Provider its user's.
	Session, User, Provider string
	Reason                  Reason
	// UserAgent and IP are a minted session's client; IP is also a
	// limited client's address key.
	UserAgent, IP string
	// Expires is a minted session's expiry.
	Expires time.Time
	// Err is a failure's error; error strings never hold a token.
	Err error
}

// Observer receives the engine's events. Its methods are called
// synchronously on the request's goroutine (or an exchange's); they must
// be fast and must not panic (the middleware's recovers).
type Observer interface {
	// Begin is called when an operation begins, with ev's Kind, Time and
	// what is known; it returns the context the operation runs in.
	Begin(ctx context.Context, ev Event) context.Context
	// Observe receives every event, an operation's end with the context
	// Begin returned.
	Observe(ctx context.Context, ev Event)
	// Timed reports whether operations of kind k need their Time and
	// Duration: when it is false, neither is read from the clock (a steady
	// request reads it once).
	Timed(k Kind) bool
}

// Emit delivers ev to the observer (Time as the caller set it: see
// Event.Time).
func (e *Engine) Emit(ctx context.Context, ev Event) {
	if e.cfg.Observer == nil {
		return
	}
	e.cfg.Observer.Observe(ctx, ev)
}

// op is an operation under way: begin starts it, finish delivers its
// event.
type op struct {
	ev    Event
	start time.Time // monotonic; zero when the observer does not time ev's kind
}

// begin starts the operation ev (Kind, Provider, Reason...) and returns
// the context it runs in.
func (e *Engine) begin(ctx context.Context, ev Event) (context.Context, op) {
	o := op{ev: ev}
	if e.cfg.Observer == nil {
		return ctx, o
	}
	if e.cfg.Observer.Timed(ev.Kind) {
		o.ev.Time, o.start = e.cfg.Now(), time.Now()
	}
	return e.cfg.Observer.Begin(ctx, o.ev), o
}

// finish delivers the end of o in ctx (the context begin returned), with
// its outcome (when set) and error.
func (e *Engine) finish(ctx context.Context, o op, outcome Reason, err error) {
	if !o.start.IsZero() {
		o.ev.Duration = time.Since(o.start)
	}
	if outcome != "" {
		o.ev.Reason = outcome
	}
	o.ev.Err = err
	e.Emit(ctx, o.ev)
}

// writeOf is the start of the store write what of s's.
func writeOf(what Reason, s *format.Session) Event {
	return Event{Kind: KindStoreWrite, Reason: what, Session: s.ID, User: s.Identity.UserID, Provider: s.Identity.Provider}
}

// wrote finishes the store write o that returned err, and tells of a
// store that was unavailable.
func (e *Engine) wrote(ctx context.Context, o op, err error) {
	e.finish(ctx, o, "", err)
	e.storeFailed(ctx, o.ev.Reason, err)
}

// ended tells that s ended, and why.
func (e *Engine) ended(ctx context.Context, why Reason, s *format.Session) {
	e.Emit(ctx, Event{Kind: KindEnded, Session: s.ID, User: s.Identity.UserID, Provider: s.Identity.Provider, Reason: why})
}

// storeFailed tells that the store failed op with err, when err says the
// store was unavailable.
func (e *Engine) storeFailed(ctx context.Context, op Reason, err error) {
	if errors.Is(err, backend.ErrUnavailable) {
		e.Emit(ctx, Event{Kind: KindStoreError, Reason: op, Provider: e.providerName(), Err: err})
	}
}

// Why returns the reason credentials were refused with err, an error of
// Exchange or provider.ErrInvalidToken's: SignedOut, RejectedRecently,
// Expired, Malformed, Invalid; Limited; Canceled when the caller's
// context was canceled (its client left), or Unavailable for any other.
func Why(err error) Reason {
	var it *provider.InvalidTokenError
	switch {
	case err == ErrSignedOut:
		return SignedOut
	case err == ErrRejectedRecently:
		return RejectedRecently
	case errors.As(err, &it):
		switch {
		case strings.HasPrefix(it.Reason, "expired"):
			return Expired
		case strings.HasPrefix(it.Reason, "malformed"):
			return Malformed
		}
		return Invalid
	case errors.Is(err, provider.ErrInvalidToken):
		return Invalid
	case errors.Is(err, guesslimit.ErrNoTurn):
		return Limited
	case errors.Is(err, context.Canceled):
		return Canceled
	}
	return Unavailable
}

// outcome is how an exchange that returned l and err went.
func outcome(l Loaded, err error) Reason {
	switch {
	case err != nil:
		return Why(err)
	case l.Minted:
		return Minted
	}
	return Existing
}
