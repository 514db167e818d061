// Command chi-app is sessiongate's example: a chi router with the
// middleware mounted, a protected /api/me, the session routes under /auth,
// and a demo page. With PROVIDER=dev (the default) it runs a
// Plurality-format upstream on loopback and needs no network.
//
//	go run ./examples/chi-app              # memory store, dev provider
//	SESSION_STORE=redis go run ./examples/chi-app
//
// Configuration is by environment variable: ADDR, SESSION_STORE, REDIS_URL,
// PROVIDER, PLURALITY_API_URL, PLURALITY_CLIENT_ID, PLURALITY_CLIENT_SECRET,
// PARA_API_URL, PARA_SECRET_API_KEY, PARA_JWT_AUDIENCE, COOKIE_SECURE,
// SESSION_LIFETIME, SESSION_IDLE_TIMEOUT, SESSION_SECRET.
//
// chi-app -healthcheck asks a running chi-app (at ADDR) for /healthz and
// exits 0 when it answers 200: the container health check of an image
// that has no shell or curl.
package main

import (
	"context"
	"fmt"
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

	srv := &http.Server{
		Addr:              cfg.Addr,
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info(fmt.Sprintf("chi-app listening on http://%s", cfg.Addr), "store", cfg.Store, "provider", cfg.Provider)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
