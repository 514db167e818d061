package otelsessiongate_test

import (
	"context"
	"fmt"
	"log"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/otelsessiongate"
)

// An application gives New its SDK's providers (here OpenTelemetry's
// no-op ones, which the API module carries) and hands the Observer to the
// middleware, beside an observer of its own. Each operation's Begin
// returns the context its end is observed with: that is how the adapter
// nests the upstream call and the store write under the exchange's span.
func Example() {
	obs, err := otelsessiongate.New(otelsessiongate.Config{
		MeterProvider:  metricnoop.NewMeterProvider(), // nil: otel.GetMeterProvider()
		TracerProvider: tracenoop.NewTracerProvider(), // nil: otel.GetTracerProvider()
	})
	if err != nil {
		log.Fatal(err)
	}
	signIns := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		if e.Kind == middleware.EventMinted {
			fmt.Printf("new sign-in of %s via %s\n", e.UserID, e.Provider)
		}
	})
	observer := middleware.Observers(obs, signIns)
	_ = middleware.Config{Observer: observer} // with a Provider, to middleware.New

	// What the middleware does for one exchange:
	ctx := observer.Begin(context.Background(), middleware.Event{Kind: middleware.EventExchange, Provider: "plurality"})
	observer.Observe(ctx, middleware.Event{Kind: middleware.EventMinted, Provider: "plurality", UserID: "alice", SessionID: "pa9vNLRUSGF9WuFjzGEu8g"})
	observer.Observe(ctx, middleware.Event{Kind: middleware.EventExchange, Provider: "plurality", Reason: middleware.ReasonMinted})
	// Output: new sign-in of alice via plurality
}
