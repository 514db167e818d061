package middleware

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/sessiongate/sessiongate/internal/engine"
	"github.com/sessiongate/sessiongate/useragent"
)

// hook is the engine's observer, the one place every event passes: it
// turns the engine's events into Events and hands each to the
// middleware's log (eventLog), to the counters of Metrics, and to the
// observers of Config.Observer, each called on its own so that one's
// panic (recovered and logged at most once a second) costs the others
// nothing.
type hook struct {
	log       *eventLog
	counts    *counters // nil for a Revoker
	observers []Observer
	logger    *slog.Logger
	now       func() time.Time
	panics    everySecond
}

func newHook(cfg Config, counts *counters) *hook {
	h := &hook{log: newEventLog(cfg), counts: counts, logger: cfg.Logger, now: cfg.Now}
	switch o := cfg.Observer.(type) {
	case nil:
	case multiObserver:
		h.observers = o
	default:
		h.observers = []Observer{o}
	}
	return h
}

// Begin begins an operation for each observer, in turn.
func (h *hook) Begin(ctx context.Context, ev engine.Event) context.Context {
	if len(h.observers) == 0 {
		return ctx
	}
	e := publicEvent(ev)
	for _, o := range h.observers {
		ctx = h.begin(o, ctx, e)
	}
	return ctx
}

// Timed reports whether operations of kind k need their Time and
// Duration: for Config.Observer's observers, and for Metrics'
// UpstreamSeconds.
func (h *hook) Timed(k engine.Kind) bool {
	return len(h.observers) > 0 || k == engine.KindUpstream
}

// Observe hands ev to the counters, the log and each observer.
func (h *hook) Observe(ctx context.Context, ev engine.Event) {
	if h.counts != nil {
		h.counts.count(&ev)
	}
	if len(h.observers) == 0 {
		// The events of a steady request, with no observer to hand
		// them to: counted, and a reuse logged (at DEBUG).
		switch ev.Kind {
		case engine.KindReused:
			h.log.reused(ctx, ev.Session)
			return
		case engine.KindExchanged, engine.KindExchange:
			return
		}
	}
	if ev.Time.IsZero() && len(h.observers) > 0 {
		// Only Config.Observer's observers read it.
		ev.Time = h.now()
	}
	e := publicEvent(ev)
	h.log.log(ctx, &e)
	for _, o := range h.observers {
		h.observe(o, ctx, e)
	}
}

func (h *hook) begin(o Observer, ctx context.Context, e Event) (out context.Context) {
	out = ctx
	defer h.recover(e.Kind)
	if c := o.Begin(ctx, e); c != nil {
		out = c
	}
	return out
}

func (h *hook) observe(o Observer, ctx context.Context, e Event) {
	defer h.recover(e.Kind)
	o.Observe(ctx, e)
}

// recover logs, at most once a second, a panic of an observer: its
// value only when it is a runtime error (another value could hold
// anything), and its stack.
func (h *hook) recover(k EventKind) {
	v := recover()
	if v == nil {
		return
	}
	if n, ok := h.panics.due(h.now()); ok {
		what := fmt.Sprintf("a %T", v)
		if re, ok := v.(runtime.Error); ok {
			what = re.Error()
		}
		h.logger.Error("sessiongate: an Observer panicked; the request goes on. Logged at most once a second",
			"event", k.String(), "panic", what, "since_last_logged", n, "stack", string(debug.Stack()))
	}
}

// publicEvent is ev as observers see it: the device parsed from a minted
// session's User-Agent.
func publicEvent(ev engine.Event) Event {
	e := Event{
		Kind:      EventKind(ev.Kind),
		Time:      ev.Time,
		Duration:  ev.Duration,
		SessionID: ev.Session,
		UserID:    ev.User,
		Provider:  ev.Provider,
		Reason:    Reason(ev.Reason),
		ClientIP:  ev.IP,
		Expires:   ev.Expires,
		Err:       ev.Err,
	}
	if ev.Kind == engine.KindMinted {
		e.Device = useragent.Parse(ev.UserAgent)
	}
	return e
}

// everySecond lets an event that can repeat per request (an outage, a
// broken observer) be logged at most once a second, with how many times
// it happened since. The zero value is ready; it is safe for concurrent
// use.
type everySecond struct {
	last  atomic.Int64 // unix ns of the last logged time
	since atomic.Int64 // events since
}

// due counts one event at now and reports whether to log it, with the
// number of events since the last one logged (this one included).
func (e *everySecond) due(now time.Time) (int64, bool) {
	n := e.since.Add(1)
	t, last := now.UnixNano(), e.last.Load()
	if t-last < int64(time.Second) || !e.last.CompareAndSwap(last, t) {
		return 0, false
	}
	e.since.Add(-n)
	return n, true
}
