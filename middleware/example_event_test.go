package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/plurality"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store"
)

// ExampleObserver tells users of new sign-ins: an Observer that queues a
// "new sign-in from Chrome on macOS" mail on each minted session (a
// continued one is the same device, not a new sign-in), and notes ended
// ones. Observers run on the request's goroutine: the mail goes to a
// queue, sent elsewhere.
func ExampleObserver() {
	upstream := providertest.NewPlurality()
	defer upstream.Close()

	mail := make(chan string, 16) // a mailer reads it elsewhere
	notify := middleware.ObserverFunc(func(ctx context.Context, e middleware.Event) {
		switch {
		case e.Kind == middleware.EventMinted && e.Reason != middleware.ReasonContinued:
			os := strings.Replace(e.Device.OS.Family, "Mac OS X", "macOS", 1)
			mail <- fmt.Sprintf("to %s: new sign-in from %s on %s (%s, via %s)", e.UserID, e.Device.Family, os, e.ClientIP, e.Provider)
		case e.Kind == middleware.EventEnded:
			mail <- fmt.Sprintf("to %s: a session ended (%s)", e.UserID, e.Reason)
		}
	})
	auth := middleware.New(middleware.Config{
		Store: store.NewMemory(),
		Provider: plurality.New(plurality.Config{
			BaseURL: upstream.URL, ClientID: upstream.ClientID, ClientSecret: provider.Secret(upstream.ClientSecret),
		}),
		Secret:   "a shared secret of at least 16 bytes",
		Observer: notify, // several: middleware.Observers(notify, otelObserver, ...)
	})
	r := chi.NewRouter()
	r.Use(auth.Handler)
	r.Mount("/auth", auth.Routes("/auth"))
	srv := httptest.NewTLSServer(r)
	defer srv.Close()

	signIn, _ := http.NewRequest("POST", srv.URL+"/auth/session", nil)
	signIn.Header.Set("Authorization", "Bearer "+upstream.Issue("alice", time.Hour))
	signIn.Header.Set("User-Agent", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36")
	res, _ := srv.Client().Do(signIn)
	res.Body.Close()

	signOut, _ := http.NewRequest("DELETE", srv.URL+"/auth/session", nil)
	signOut.AddCookie(res.Cookies()[0])
	res, _ = srv.Client().Do(signOut)
	res.Body.Close()

	fmt.Println(<-mail)
	fmt.Println(<-mail)
	// Output:
	// to alice: new sign-in from Chrome on macOS (127.0.0.1, via plurality)
	// to alice: a session ended (signed out)
}
