package otelsessiongate

import (
	"context"
	"errors"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/store"
)

// ScopeName is the instrumentation scope of the meter and the tracer.
const ScopeName = "github.com/sessiongate/sessiongate/otelsessiongate"

// The attribute keys. Metrics carry the provider and an outcome or a
// reason, never a user or a session (their number would be unbounded);
// spans and span events carry the public session id and the user id too.
const (
	AttrProvider = attribute.Key("sessiongate.provider") // the provider's name
	AttrOutcome  = attribute.Key("sessiongate.outcome")  // how an exchange or an upstream call went (middleware.Reason)
	AttrReason   = attribute.Key("sessiongate.reason")   // why a token was refused or a session ended (middleware.Reason)
	AttrVia      = attribute.Key("sessiongate.via")      // a reused session's way in: "session" (cookie, header) or "token"
	AttrWrite    = attribute.Key("sessiongate.write")    // which store write, or which store operation failed
	AttrSession  = attribute.Key("sessiongate.session.id")
	AttrUser     = attribute.Key("sessiongate.user.id")
)

// Config configures New. The zero value uses OpenTelemetry's global
// providers.
type Config struct {
	// MeterProvider makes the instruments. Default otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// TracerProvider makes the spans. Default otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
}

// Observer is a middleware.Observer that records sessiongate's events as
// OpenTelemetry metrics and spans. Build it with New; it is safe for
// concurrent use, and each event costs a few counter additions, or a
// span start and end: fast enough to run in the request, as observers
// must.
//
// Metrics (units in brackets; the Prometheus exporter names them
// sessiongate_exchanges_total, sessiongate_upstream_duration_seconds...):
//
//   - sessiongate.exchanges {exchange}: frontend tokens exchanged, by
//     provider and outcome (minted, existing, invalid, expired, signed
//     out, rejected recently, unavailable, rate limited, canceled: the
//     request's client left);
//   - sessiongate.upstream.duration (s): a histogram of the provider
//     calls, by provider and outcome (valid, invalid, expired,
//     malformed, unavailable);
//   - sessiongate.sessions.minted {session}: by provider, and
//     sessiongate.reason "continued" for a device's session continued;
//   - sessiongate.sessions.reused {request}: by provider and via
//     ("session": its cookie or header; "token": its frontend token);
//   - sessiongate.sessions.ended {session}: by provider and reason;
//   - sessiongate.tokens.rejected {request}: credentials refused (401,
//     403), by provider and reason;
//   - sessiongate.store.errors {error}: by operation (sessiongate.write:
//     read, list, mint, end, touch, values);
//   - sessiongate.rate_limited {request}: requests refused with 429;
//   - sessiongate.clients.limited {client}: lockouts begun.
//
// Spans: "sessiongate.exchange" for each exchange, a child of the
// request's span when the request's context has one (as otelhttp's
// handler gives it), with children "sessiongate.upstream" (the provider
// call, SpanKindClient) and "sessiongate.store.write" (the mint); the
// store writes of a sign-out, a keep-alive or the handler's values are
// children of the request's span. A span's status is Error when the
// provider or the store could not answer; a rejected token is not an
// error of the server. The other events (minted, reused, ended,
// rejected...) are span events on the span of their context.
//
// Concurrent requests with one frontend token share one exchange: its
// upstream call and store write are children of the exchange span of the
// request that started it; the others' exchange spans have no children.
// When that first request's client leaves (its outcome "canceled"), its
// span ends before its children, and the minted span event, delivered
// after, is dropped by the SDK (the counters count it all the same).
type Observer struct {
	tracer trace.Tracer

	exchanges, minted, reused, ended, rejected metric.Int64Counter
	storeErrors, rateLimited, clientsLimited   metric.Int64Counter
	upstream                                   metric.Float64Histogram

	// attrs caches the attribute sets of the hottest event (a reused
	// session), one per provider and way in.
	attrs sync.Map // reusedKey → metric.MeasurementOption
}

type reusedKey struct{ provider, via string }

// New returns an Observer that records in cfg's providers. It returns an
// error when an instrument cannot be made (a MeterProvider's own error).
func New(cfg Config) (*Observer, error) {
	mp, tp := cfg.MeterProvider, cfg.TracerProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	m := mp.Meter(ScopeName)
	o := &Observer{tracer: tp.Tracer(ScopeName)}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	o.exchanges = counter("sessiongate.exchanges", "{exchange}", "Frontend tokens exchanged for a session, by outcome.")
	o.minted = counter("sessiongate.sessions.minted", "{session}", "Sessions minted: sign-ins, and devices' sessions continued.")
	o.reused = counter("sessiongate.sessions.reused", "{request}", "Requests answered from an existing session.")
	o.ended = counter("sessiongate.sessions.ended", "{session}", "Sessions ended, by reason.")
	o.rejected = counter("sessiongate.tokens.rejected", "{request}", "Credentials refused with 401 or 403, by reason.")
	o.storeErrors = counter("sessiongate.store.errors", "{error}", "Session store operations that failed: the store was unavailable.")
	o.rateLimited = counter("sessiongate.rate_limited", "{request}", "Requests refused with 429 after failed credentials.")
	o.clientsLimited = counter("sessiongate.clients.limited", "{client}", "Lockouts of clients whose credentials kept failing.")
	var err error
	o.upstream, err = m.Float64Histogram("sessiongate.upstream.duration", metric.WithUnit("s"),
		metric.WithDescription("Calls to the identity provider, by outcome."),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return o, nil
}

// opKey is the context key of the span an operation's Begin started.
type opKey struct{}

// opSpan is that span, with the kind of its operation: an end ends only
// the span its own Begin started, never another one in its context.
type opSpan struct {
	kind middleware.EventKind
	span trace.Span
}

// Begin starts the span of an operation (an exchange, a provider call, a
// store write) as a child of the span in ctx, and returns ctx with it.
func (o *Observer) Begin(ctx context.Context, e middleware.Event) context.Context {
	var (
		name  string
		kind  = trace.SpanKindInternal
		attrs = []attribute.KeyValue{AttrProvider.String(e.Provider)}
	)
	switch e.Kind {
	case middleware.EventExchange:
		name = "sessiongate.exchange"
	case middleware.EventUpstream:
		name, kind = "sessiongate.upstream", trace.SpanKindClient
	case middleware.EventStoreWrite:
		name, kind = "sessiongate.store.write", trace.SpanKindClient
		attrs = append(attrs, AttrWrite.String(string(e.Reason)))
		if e.SessionID != "" {
			attrs = append(attrs, AttrSession.String(e.SessionID))
		}
	default:
		return ctx
	}
	ctx, span := o.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
	return context.WithValue(ctx, opKey{}, opSpan{kind: e.Kind, span: span})
}

// Observe records e: an operation's end ends its span and is measured;
// any other event is counted and added to the span of its context.
func (o *Observer) Observe(ctx context.Context, e middleware.Event) {
	provider := AttrProvider.String(e.Provider)
	switch e.Kind {
	case middleware.EventExchange:
		o.exchanges.Add(ctx, 1, metric.WithAttributes(provider, AttrOutcome.String(string(e.Reason))))
		o.endSpan(ctx, e)
		return
	case middleware.EventUpstream:
		o.upstream.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(provider, AttrOutcome.String(string(e.Reason))))
		o.endSpan(ctx, e)
		return
	case middleware.EventStoreWrite:
		o.endSpan(ctx, e)
		return
	case middleware.EventMinted:
		if e.Reason != "" {
			o.minted.Add(ctx, 1, metric.WithAttributes(provider, AttrReason.String(string(e.Reason))))
		} else {
			o.minted.Add(ctx, 1, metric.WithAttributes(provider))
		}
	case middleware.EventReused:
		o.reused.Add(ctx, 1, o.reusedAttrs(e.Provider, "session"))
	case middleware.EventExchanged:
		o.reused.Add(ctx, 1, o.reusedAttrs(e.Provider, "token"))
	case middleware.EventEnded:
		o.ended.Add(ctx, 1, metric.WithAttributes(provider, AttrReason.String(string(e.Reason))))
	case middleware.EventRejected:
		o.rejected.Add(ctx, 1, metric.WithAttributes(provider, AttrReason.String(string(e.Reason))))
	case middleware.EventStoreError:
		o.storeErrors.Add(ctx, 1, metric.WithAttributes(AttrWrite.String(string(e.Reason))))
	case middleware.EventRateLimited:
		o.rateLimited.Add(ctx, 1)
	case middleware.EventClientLimited:
		o.clientsLimited.Add(ctx, 1)
	}
	if e.Kind == middleware.EventReused {
		return // every steady request: a span event each would only be noise
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		attrs := []attribute.KeyValue{provider}
		if e.Reason != "" {
			attrs = append(attrs, AttrReason.String(string(e.Reason)))
		}
		if e.SessionID != "" {
			attrs = append(attrs, AttrSession.String(e.SessionID))
		}
		if e.UserID != "" {
			attrs = append(attrs, AttrUser.String(e.UserID))
		}
		span.AddEvent("sessiongate."+e.Kind.String(), trace.WithAttributes(attrs...))
	}
}

// endSpan ends the span of the operation e ends, if ctx holds the one its
// Begin started.
func (o *Observer) endSpan(ctx context.Context, e middleware.Event) {
	s, ok := ctx.Value(opKey{}).(opSpan)
	if !ok || s.kind != e.Kind {
		return
	}
	if e.Kind != middleware.EventStoreWrite {
		s.span.SetAttributes(AttrOutcome.String(string(e.Reason)))
	}
	if e.UserID != "" {
		s.span.SetAttributes(AttrUser.String(e.UserID))
	}
	if e.Err != nil && (e.Reason == middleware.ReasonUnavailable || errors.Is(e.Err, store.ErrUnavailable)) {
		s.span.SetStatus(codes.Error, e.Err.Error())
	}
	s.span.End()
}

// reusedAttrs returns the attributes of a reused session's count.
func (o *Observer) reusedAttrs(provider, via string) metric.MeasurementOption {
	k := reusedKey{provider, via}
	if v, ok := o.attrs.Load(k); ok {
		return v.(metric.MeasurementOption)
	}
	opt := metric.WithAttributeSet(attribute.NewSet(AttrProvider.String(provider), AttrVia.String(via)))
	o.attrs.Store(k, opt)
	return opt
}

var _ middleware.Observer = (*Observer)(nil)
