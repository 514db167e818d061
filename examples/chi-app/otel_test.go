package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/otelsessiongate"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/plurality"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store"
)

// The OpenTelemetry adapter's test lives here, in the example's module:
// it needs OTel's SDK (in-memory reader and span recorder), which this
// module requires anyway for its Prometheus exporter, while the adapter's
// own go.mod requires OTel's API alone.

// TestOpenTelemetryOfOneExchange: one sign-in through the real
// middleware, under a request span as otelhttp would start it, yields the
// counters, the upstream latency histogram, and the spans nested request
// → exchange → upstream call and store write.
func TestOpenTelemetryOfOneExchange(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	obs, err := otelsessiongate.New(otelsessiongate.Config{MeterProvider: mp, TracerProvider: tp})
	require.NoError(t, err)

	upstream := providertest.NewPlurality()
	defer upstream.Close()
	auth := middleware.New(middleware.Config{
		Store: store.NewMemory(),
		Provider: plurality.New(plurality.Config{
			BaseURL: upstream.URL, ClientID: upstream.ClientID, ClientSecret: provider.Secret(upstream.ClientSecret),
		}),
		Secret:   "a test secret of 16+ bytes",
		Observer: obs,
		Logger:   slog.New(slog.DiscardHandler),
	})
	app := auth.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	// What otelhttp.NewHandler does: a server span in the request's context.
	requestSpans := tp.Tracer("test")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := requestSpans.Start(r.Context(), "GET /api/me", trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		app.ServeHTTP(w, r.WithContext(ctx))
	}))
	defer srv.Close()

	token := upstream.Issue("mia", time.Hour)
	for range 2 { // a sign-in, then the same token again: its session
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
	}

	// Metrics.
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	require.Len(t, rm.ScopeMetrics, 1)
	assert.Equal(t, otelsessiongate.ScopeName, rm.ScopeMetrics[0].Scope.Name)
	got := map[string]metricdata.Aggregation{}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		got[m.Name] = m.Data
	}
	sums := func(name string) map[string]int64 {
		t.Helper()
		data, ok := got[name].(metricdata.Sum[int64])
		require.True(t, ok, "%s is an int64 counter", name)
		assert.True(t, data.IsMonotonic)
		out := map[string]int64{}
		for _, p := range data.DataPoints {
			out[attrs(p.Attributes)] = p.Value
		}
		return out
	}
	assert.Equal(t, map[string]int64{
		"sessiongate.outcome=minted,sessiongate.provider=plurality":   1,
		"sessiongate.outcome=existing,sessiongate.provider=plurality": 1,
	}, sums("sessiongate.exchanges"))
	assert.Equal(t, map[string]int64{"sessiongate.provider=plurality": 1}, sums("sessiongate.sessions.minted"))
	assert.Equal(t, map[string]int64{"sessiongate.provider=plurality,sessiongate.via=token": 1}, sums("sessiongate.sessions.reused"))
	hist, ok := got["sessiongate.upstream.duration"].(metricdata.Histogram[float64])
	require.True(t, ok, "the upstream latency is a float64 histogram")
	require.Len(t, hist.DataPoints, 1)
	p := hist.DataPoints[0]
	assert.EqualValues(t, 1, p.Count, "one upstream call")
	assert.Equal(t, "sessiongate.outcome=valid,sessiongate.provider=plurality", attrs(p.Attributes))
	assert.Positive(t, p.Sum)
	t.Logf("upstream call: %.6f s", p.Sum)

	// Spans: the first request's.
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans.Ended() {
		if _, seen := byName[s.Name()]; !seen {
			byName[s.Name()] = s
		}
	}
	request, exchange := byName["GET /api/me"], byName["sessiongate.exchange"]
	upstreamCall, write := byName["sessiongate.upstream"], byName["sessiongate.store.write"]
	require.NotNil(t, request)
	require.NotNil(t, exchange, "an exchange span")
	require.NotNil(t, upstreamCall, "an upstream span")
	require.NotNil(t, write, "a store write span")
	assert.Equal(t, request.SpanContext().SpanID(), exchange.Parent().SpanID(), "exchange under the request")
	assert.Equal(t, exchange.SpanContext().SpanID(), upstreamCall.Parent().SpanID(), "upstream call under the exchange")
	assert.Equal(t, exchange.SpanContext().SpanID(), write.Parent().SpanID(), "store write under the exchange")
	assert.Equal(t, request.SpanContext().TraceID(), write.SpanContext().TraceID())
	assert.Equal(t, trace.SpanKindClient, upstreamCall.SpanKind())
	assert.Contains(t, write.Attributes(), attribute.String("sessiongate.write", "mint"))
	assert.Contains(t, exchange.Attributes(), attribute.String("sessiongate.outcome", "minted"))
	var events []string
	for _, e := range exchange.Events() {
		events = append(events, e.Name)
	}
	assert.Contains(t, events, "sessiongate.minted", "the sign-in is an event of the exchange span")
	for _, s := range spans.Ended() {
		for _, kv := range s.Attributes() {
			assert.NotContains(t, kv.Value.Emit(), token, "no token in span %s", s.Name())
		}
	}
	t.Logf("spans: request %v ⊃ exchange %v ⊃ upstream %v, store write %v",
		request.EndTime().Sub(request.StartTime()), exchange.EndTime().Sub(exchange.StartTime()),
		upstreamCall.EndTime().Sub(upstreamCall.StartTime()), write.EndTime().Sub(write.StartTime()))
}

// attrs prints an attribute set as k=v,k=v in key order.
func attrs(s attribute.Set) string {
	out := ""
	for i, kv := range s.ToSlice() {
		if i > 0 {
			out += ","
		}
		out += string(kv.Key) + "=" + kv.Value.Emit()
	}
	return out
}
