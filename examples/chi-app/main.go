// Command chi-app is sessiongate's example: a chi router with the
// middleware mounted, a protected /api/me, the session routes under /auth,
// and a demo page. With PROVIDER=dev (the default) it runs a
// Plurality-format upstream on loopback and needs no network.
//
//	make run                              # from the repository root: memory store, dev provider
//	SESSION_STORE=redis go run .          # from examples/chi-app, its own module
//
// Configuration is by environment variable: ADDR, SESSION_STORE, REDIS_URL
// (a single Redis, ?master_name= for Sentinel, ?cluster=true for Cluster;
// rediss:// with REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE, REDIS_TLS_KEY_FILE),
// PROVIDER, PLURALITY_API_URL, PLURALITY_CLIENT_ID, PLURALITY_CLIENT_SECRET,
// PARA_API_URL, PARA_SECRET_API_KEY, PARA_JWT_AUDIENCE, COOKIE_SECURE,
// SESSION_LIFETIME, SESSION_IDLE_TIMEOUT, SESSION_SECRET, and METRICS_ADDR:
// when set, a second listener there serves the middleware's metrics at
// GET /metrics in the Prometheus format, made from its events by
// otelsessiongate and OTel's Prometheus exporter (off by default);
// SESSION_STEP_UP_MAX_AGE (15m; 0: off), SESSION_MAX_PER_USER (0: no
// limit), and ADMIN_ADDR with ADMIN_TOKEN: when both are set, a listener
// there serves the back-office API (Auth.AdminRoutes) to requests that
// carry Authorization: Bearer ADMIN_TOKEN. GET /api/sign-ins returns the
// signed-in user's latest sign-ins.
//
// chi-app -healthcheck asks a running chi-app (at ADDR) for /healthz and
// exits 0 when it answers 200: the container health check of an image
// that has no shell or curl.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "-healthcheck" {
		os.Exit(healthcheck(os.Getenv("ADDR")))
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("chi-app: " + err.Error())
		os.Exit(1)
	}
}

// healthcheck returns 0 when the app listening on addr (ADDR's form,
// 127.0.0.1:8080 when empty) answers GET /healthz with 200, and 1
// otherwise, within 3 seconds.
func healthcheck(addr string) int {
	if addr == "" {
		addr = defaultAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck: ADDR is not host:port")
		return 1
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	client := &http.Client{Timeout: 3 * time.Second}
	res, err := client.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "healthcheck: /healthz answered", res.Status)
		return 1
	}
	return 0
}

func run(log *slog.Logger) error {
	cfg, err := configFrom(os.Getenv)
	if err != nil {
		return err
	}
	a, err := newApp(cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()

	servers := []*http.Server{newServer(cfg.Addr, a.handler, productionLimits)}
	if cfg.MetricsAddr != "" {
		servers = append(servers, newServer(cfg.MetricsAddr, a.metrics, productionLimits))
	}
	if a.admin != nil {
		servers = append(servers, newServer(cfg.AdminAddr, a.admin, productionLimits))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, len(servers))
	for _, srv := range servers {
		go func() { errc <- srv.ListenAndServe() }()
	}
	log.Info(fmt.Sprintf("chi-app listening on http://%s", cfg.Addr), "store", cfg.Store, "provider", cfg.Provider)
	if cfg.MetricsAddr != "" {
		log.Info(fmt.Sprintf("metrics at http://%s/metrics", cfg.MetricsAddr))
	}
	if a.admin != nil {
		log.Info(fmt.Sprintf("back-office API at http://%s/users/{provider}/{user}/sessions", cfg.AdminAddr))
	}

	// err is nil here: a listener's error, if one stops, is the result.
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, srv := range servers {
		if e := srv.Shutdown(shutdown); err == nil {
			err = e
		}
	}
	return err
}

// serverLimits bound what one client can hold of the server: how long it
// may take to send a request and to take its answer, how long an idle
// connection stays open, and how large a request may be. Each slow or
// oversized client costs a connection, a goroutine and a file descriptor
// until a limit ends it.
type serverLimits struct {
	ReadHeader     time.Duration // to send the request line and headers
	Read           time.Duration // to send the whole request, body included
	Write          time.Duration // from the end of the headers to the end of the answer
	Idle           time.Duration // a keep-alive connection between requests
	MaxHeaderBytes int           // request line and headers; more gets 431
	MaxBodyBytes   int64         // request body; more gets 413
}

// productionLimits are the example's limits. No route of the app takes a
// body (tokens come in headers), and headers carry at most an 8 KiB
// frontend token and a session cookie, so honest requests are small and
// quick; what a slow or bloated client would hold is cut early.
var productionLimits = serverLimits{
	// A client on a poor network sends a few hundred bytes of headers
	// well within 5 s.
	ReadHeader: 5 * time.Second,
	// The whole request: headers plus a body of at most MaxBodyBytes. A
	// client trickling a body (one byte every 2 s held a connection for
	// 46 s, and 1,100 of them exhausted the app's file descriptors) is
	// cut off here.
	Read: 10 * time.Second,
	// An exchange may wait for a limited client's turn and then for the
	// upstream, each up to the middleware's ExchangeTimeout (10 s), plus a
	// store round trip; the answer must still get out after that, and a
	// client that does not read it is dropped.
	Write: 30 * time.Second,
	// Browsers reuse a connection within seconds; an idle one costs a
	// file descriptor for as long as it is kept.
	Idle: 60 * time.Second,
	// An 8 KiB token, a session cookie and ordinary browser headers fit
	// with room to spare; net/http's default is 1 MiB.
	MaxHeaderBytes: 32 << 10,
	// No route reads a body: 4 KiB leaves room for a small JSON body on a
	// route an integrator adds, and nothing more is read.
	MaxBodyBytes: 4 << 10,
}

// newServer is the app's HTTP server on addr: h behind the body limit, and
// the timeouts and header limit of l.
func newServer(addr string, h http.Handler, l serverLimits) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           limitBody(l.MaxBodyBytes, h),
		ReadHeaderTimeout: l.ReadHeader,
		ReadTimeout:       l.Read,
		WriteTimeout:      l.Write,
		IdleTimeout:       l.Idle,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}

// limitBody answers 413 to a request whose body is over max bytes, before
// next sees it, and closes its connection (the rest of the body is never
// read). A declared Content-Length is checked at once; a body of unknown
// length (chunked) is read ahead, at most max+1 bytes, and handed to next
// from memory; one that cannot be read (malformed, cut off, or slower
// than the read timeout) gets 400.
func limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.ContentLength > max:
			tooLarge(w, max)
			return
		case r.ContentLength < 0:
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
			if tooBig := new(http.MaxBytesError); errors.As(err, &tooBig) {
				tooLarge(w, max)
				return
			} else if err != nil {
				w.Header().Set("Connection", "close")
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad_request", "message": "the request body could not be read"})
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		next.ServeHTTP(w, r)
	})
}

func tooLarge(w http.ResponseWriter, max int64) {
	w.Header().Set("Connection", "close")
	writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{
		"error":   "request_too_large",
		"message": fmt.Sprintf("request bodies are limited to %d bytes", max),
	})
}
