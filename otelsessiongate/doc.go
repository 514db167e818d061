// Package otelsessiongate records sessiongate's events as OpenTelemetry
// metrics and spans: counters of exchanges, sign-ins, reused and ended
// sessions, refusals and store errors, a histogram of the provider's
// latency, and an exchange span with the provider call and the store
// write as its children, under the request's span.
//
// It is a module of its own, so that sessiongate's core depends on no
// OpenTelemetry module; it depends on OpenTelemetry's API alone (the
// application brings the SDK and its exporters):
//
//	obs, err := otelsessiongate.New(otelsessiongate.Config{
//		MeterProvider:  meterProvider,  // nil: otel.GetMeterProvider()
//		TracerProvider: tracerProvider, // nil: otel.GetTracerProvider()
//	})
//	if err != nil { ... }
//	auth := middleware.New(middleware.Config{
//		Provider: p,
//		Observer: obs, // or middleware.Observers(obs, yourOwn)
//	})
//	http.ListenAndServe(addr, otelhttp.NewHandler(r, "app")) // the request's span
//
// Spans and span events carry public session ids and user ids, never a
// token; metrics carry provider names and reasons only.
package otelsessiongate
