package middleware

import (
	"context"
	"strconv"
	"time"

	"github.com/sessiongate/sessiongate/internal/engine"
	"github.com/sessiongate/sessiongate/useragent"
)

// Event is one thing the middleware did: a session reused, exchanged,
// minted or ended, credentials refused, a provider call, a store write or
// failure, a client rate limited. It names sessions by their public id
// (Session.ID) and users by id and provider: never a token, a store key
// or a secret. Config.Observer receives every one; the middleware's own
// log lines and Auth.Metrics are made from them too.
type Event struct {
	// Kind is what happened.
	Kind EventKind
	// Time is when it happened (Config.Now's clock); for the end of an
	// operation, when the operation began.
	Time time.Time
	// Duration is how long an operation took (EventExchange,
	// EventUpstream, EventStoreWrite), on the monotonic clock; 0 for the
	// other kinds.
	Duration time.Duration
	// SessionID is the session's public id (Session.ID), when the event
	// is about one session.
	SessionID string
	// UserID and Provider are the user's, when known; Provider alone for
	// an exchange or an upstream call (Config.Provider's Name).
	UserID, Provider string
	// Reason says why or how: why credentials were refused
	// (EventRejected) or a session ended (EventEnded); how an exchange or
	// an upstream call went; which store write it was (EventStoreWrite)
	// or what failed (EventStoreError); ReasonContinued on an EventMinted
	// that continues the device's session (not a new sign-in). See the
	// Reason constants.
	Reason Reason
	// Device is a minted session's client device, parsed from its
	// User-Agent ("Chrome" on "macOS").
	Device useragent.UserAgent
	// ClientIP is a minted session's client address (Config.ClientIP), or
	// the address (IPv6: its /64) of a client whose lockout began.
	ClientIP string
	// Expires is when a minted session expires.
	Expires time.Time
	// Err is a failure's error (a rejected token's, an upstream call's,
	// a store's), nil otherwise. Its text holds no token or secret.
	Err error
}

// EventKind is what an Event tells of.
type EventKind uint8

// The kinds of events. EventExchange, EventUpstream and EventStoreWrite
// are operations: each begins with Observer.Begin and ends with an
// event of its kind, carrying its Duration.
const (
	// EventReused: a request's session (its cookie or session header)
	// served as it was: one store read.
	EventReused = EventKind(engine.KindReused)
	// EventExchanged: a frontend token answered with the session it
	// already had, with no provider call.
	EventExchanged = EventKind(engine.KindExchanged)
	// EventMinted: a new session, with its Device, ClientIP, Provider,
	// UserID and Expires: a sign-in (Reason ReasonContinued: the same
	// device's session goes on under a new token, no new sign-in).
	EventMinted = EventKind(engine.KindMinted)
	// EventRejected: credentials refused, 401 or 403; Reason says why
	// (ReasonMalformed, ReasonInvalid, ReasonExpired, ReasonSignedOut,
	// ReasonRejectedRecently, ReasonCrossOrigin).
	EventRejected = EventKind(engine.KindRejected)
	// EventEnded: a session ended; Reason says why (signed out, revoked,
	// replaced, continued, expired when seen, session limit).
	EventEnded = EventKind(engine.KindEnded)
	// EventRateLimited: a request refused with 429.
	EventRateLimited = EventKind(engine.KindRateLimited)
	// EventClientLimited: a client's failed credentials started a
	// lockout (ClientIP); once per lockout.
	EventClientLimited = EventKind(engine.KindClientLimited)
	// EventStoreError: the store could not answer; Reason names the
	// operation (ReasonRead, ReasonList, or a write), Err the error.
	EventStoreError = EventKind(engine.KindStoreError)
	// EventExchange: operation, one exchange of a frontend token; Reason
	// is its outcome (ReasonMinted, ReasonExisting, or why it failed).
	EventExchange = EventKind(engine.KindExchange)
	// EventUpstream: operation, one provider call; Reason is ReasonValid,
	// a rejection's reason, or ReasonUnavailable.
	EventUpstream = EventKind(engine.KindUpstream)
	// EventStoreWrite: operation, one store write; Reason says which
	// (ReasonWriteMint, ReasonWriteEnd, ReasonWriteTouch,
	// ReasonWriteValues), Err whether it failed.
	EventStoreWrite = EventKind(engine.KindStoreWrite)
)

var kindNames = [...]string{
	EventReused:        "reused",
	EventExchanged:     "exchanged",
	EventMinted:        "minted",
	EventRejected:      "rejected",
	EventEnded:         "ended",
	EventRateLimited:   "rate_limited",
	EventClientLimited: "client_limited",
	EventStoreError:    "store_error",
	EventExchange:      "exchange",
	EventUpstream:      "upstream",
	EventStoreWrite:    "store_write",
}

// String returns the kind's name in snake case ("minted",
// "rate_limited"), or "EventKind(N)" for an unknown one.
func (k EventKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Operation reports whether k is an operation's (EventExchange,
// EventUpstream, EventStoreWrite), begun by Observer.Begin.
func (k EventKind) Operation() bool {
	return k == EventExchange || k == EventUpstream || k == EventStoreWrite
}

// Reason says why or how something happened (Event.Reason). Its values
// are the constants below; compare with them, not with their text.
type Reason string

// Why a session ended (EventEnded).
const (
	ReasonSignedOut       = Reason(engine.SignedOut)       // Auth.SignOut; also a token whose session was signed out (EventRejected)
	ReasonSignedOutAll    = Reason(engine.SignedOutAll)    // Auth.SignOutAll
	ReasonSignedOutOthers = Reason(engine.SignedOutOthers) // Auth.SignOutOthers, from another device
	ReasonRevoked         = Reason(engine.Revoked)         // Auth.Revoke
	ReasonUserRevoked     = Reason(engine.UserRevoked)     // RevokeUser
	ReasonUpstreamRevoked = Reason(engine.UpstreamRevoked) // RevokeUpstreamSession
	ReasonReplaced        = Reason(engine.Replaced)        // another sign-in on the same device (another user, or a token that had a session)
	ReasonContinued       = Reason(engine.Continued)       // the same device signed in again: its session goes on, same public id, new token
	ReasonExpired         = Reason(engine.Expired)         // seen past its lifetime or idle timeout; also an expired token (EventRejected)
	ReasonSessionLimit    = Reason(engine.SessionLimit)    // ended for a newer session of its user
)

// Why credentials were refused (EventRejected), besides ReasonSignedOut
// and ReasonExpired.
const (
	ReasonMalformed        = Reason(engine.Malformed)        // not a token at all; never sent upstream
	ReasonInvalid          = Reason(engine.Invalid)          // rejected by the provider
	ReasonRejectedRecently = Reason(engine.RejectedRecently) // rejected moments ago: refused with no provider call
	ReasonCrossOrigin      = Reason(engine.CrossOrigin)      // a cross-origin unsafe request on a cookie (403)
)

// How an exchange (EventExchange) or a provider call (EventUpstream)
// went, besides the reasons of a refusal.
const (
	ReasonMinted      = Reason(engine.Minted)      // the exchange minted a session (or shared the mint of a concurrent one)
	ReasonExisting    = Reason(engine.Existing)    // the exchange found the token's session
	ReasonValid       = Reason(engine.Valid)       // the provider accepted the token
	ReasonUnavailable = Reason(engine.Unavailable) // the provider or the store could not answer
	ReasonRateLimited = Reason(engine.Limited)     // a limited client got no turn in time (429)
	ReasonCanceled    = Reason(engine.Canceled)    // the request's client left before the exchange's answer (its sharers still get it)
)

// Which store operation it was (EventStoreWrite, EventStoreError).
const (
	ReasonWriteMint   = Reason(engine.WriteMint)   // a new session
	ReasonWriteEnd    = Reason(engine.WriteEnd)    // ending sessions
	ReasonWriteTouch  = Reason(engine.WriteTouch)  // a session's activity (IdleTimeout)
	ReasonWriteValues = Reason(engine.WriteValues) // the handler's values
	ReasonRead        = Reason(engine.Read)        // loading a session
	ReasonList        = Reason(engine.ListRead)    // listing a user's sessions
)

// Observer receives the middleware's events (Config.Observer).
//
// Its methods are called synchronously, on the goroutine of the request
// (or of the exchange several requests share) that the event is about:
// they must be fast, and hand anything slow (mail, a push, a network
// export) to a goroutine or a queue of their own. They may be called
// concurrently. A panic in one is recovered and logged (at most once a
// second); the request goes on.
//
// Begin and Observe carry a context so that spans nest: Begin is called
// when an operation (EventExchange, EventUpstream, EventStoreWrite)
// begins, with its Kind, Time and what is known (Provider, and for a
// store write its Reason and session), under the request's context, and
// returns the context the operation runs in (a span's, say, or ctx
// itself). The events within the operation are delivered with that
// context or one derived from it: an exchange's EventUpstream and
// EventStoreWrite begin under the context the exchange's Begin
// returned, and each operation's end (an event of its kind, with its
// Duration) is delivered with the context its own Begin returned. Every
// other event is delivered with the context of the request or operation
// it happened in. The operation runs under the context Begin returns:
// Begin must derive it from ctx (context.WithValue, a span's context),
// never cancel or replace it; a canceled one fails the operation (an
// exchange then answers 503, as for a provider that did not answer).
type Observer interface {
	Begin(ctx context.Context, e Event) context.Context
	Observe(ctx context.Context, e Event)
}

// ObserverFunc is an Observer from a function: it observes every event,
// and its Begin returns ctx unchanged.
type ObserverFunc func(ctx context.Context, e Event)

// Begin returns ctx.
func (f ObserverFunc) Begin(ctx context.Context, _ Event) context.Context { return ctx }

// Observe calls f.
func (f ObserverFunc) Observe(ctx context.Context, e Event) { f(ctx, e) }

// Observers returns an Observer that hands every event to each of obs in
// turn (nil ones are skipped). Begin chains: each observer's Begin gets
// the context the previous one returned, and so each end is delivered
// with a context that carries what every Begin added. As Config.Observer
// (directly), a panic in one of them does not keep the others from an
// event: the middleware calls each itself.
func Observers(obs ...Observer) Observer {
	var list multiObserver
	for _, o := range obs {
		switch o := o.(type) {
		case nil:
		case multiObserver:
			list = append(list, o...)
		default:
			list = append(list, o)
		}
	}
	return list
}

// multiObserver is what Observers returns.
type multiObserver []Observer

func (m multiObserver) Begin(ctx context.Context, e Event) context.Context {
	for _, o := range m {
		ctx = o.Begin(ctx, e)
	}
	return ctx
}

func (m multiObserver) Observe(ctx context.Context, e Event) {
	for _, o := range m {
		o.Observe(ctx, e)
	}
}
