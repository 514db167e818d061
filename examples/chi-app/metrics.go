package main

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/otelsessiongate"
)

// telemetry is the app's OpenTelemetry: sessiongate's events become
// metrics (otelsessiongate) in a MeterProvider whose reader is OTel's
// Prometheus exporter, served at GET /metrics on METRICS_ADDR, a listener
// of its own, so that it is reachable only where that address is: put it
// behind whatever protects your other internal endpoints. Spans go to
// OTel's global TracerProvider: none until the app installs one (with
// otelhttp around the router, the exchange spans nest under the
// requests').
type telemetry struct {
	observer middleware.Observer
	handler  http.Handler // GET /metrics
	provider *sdkmetric.MeterProvider
}

func newTelemetry() (*telemetry, error) {
	reg := prometheus.NewRegistry() // the app's own: nothing global
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	obs, err := otelsessiongate.New(otelsessiongate.Config{MeterProvider: mp})
	if err != nil {
		return nil, err
	}
	return &telemetry{observer: obs, handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), provider: mp}, nil
}

func (t *telemetry) Close() { t.provider.Shutdown(context.Background()) }
