package provider

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"
)

// DefaultTimeout is how long NewHTTPClient waits for a whole upstream
// exchange (connect, send, headers and body) when given no timeout.
const DefaultTimeout = 5 * time.Second

// MaxBodySize is the largest upstream answer Do reads: 1 MiB.
const MaxBodySize = 1 << 20

// NewHTTPClient returns the client every provider uses by default: a
// timeout over the whole exchange (DefaultTimeout when timeout <= 0), its
// own transport (so one slow upstream does not share idle connections with
// the rest of the program), and redirects refused unless they stay on the
// same scheme and host, at most three of them. A redirect to another host
// would carry the request to a party the configuration never named.
//
// That redirect policy only ever applies to the bodiless GETs of public
// documents (a JWKS, an OpenID discovery document), which a redirect
// re-sends unchanged. Validation calls (a token in a body) never follow a
// redirect, whatever the client: Do answers their 3xx as unavailable.
func NewHTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 32
	return &http.Client{
		Timeout:       timeout,
		Transport:     transport,
		CheckRedirect: sameHostRedirects,
	}
}

func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return errors.New("provider: too many redirects")
	}
	first := via[0].URL
	if req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return fmt.Errorf("provider: refused redirect to another host %q", req.URL.Host)
	}
	return nil
}

// noRedirects makes a client hand back a 3xx as the answer.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Do sends req with client and reads at most MaxBodySize bytes of the
// answer, closing the body. Every failure is an *UnavailableError naming
// provider: a transport error or timeout, an answer larger than the cap, a
// 3xx answer, or a panic in the client (a custom RoundTripper's, say),
// which fails this call only and carries its stack in Err.
//
// A request that carries a body or is not a GET or HEAD (a validation
// call: Plurality's GET with a JSON body, Para's and RFC 7662's POSTs) is
// never redirected, whatever client's CheckRedirect says: Go would re-send
// it without its body (or to a place the configuration never named), and
// the answer to that is no answer about the token. Bodiless GETs follow
// the client's policy (NewHTTPClient's: same host, at most three).
//
// Any other status is left for the caller to classify. Do never includes
// the request body (where tokens travel) in an error.
func Do(client *http.Client, req *http.Request, provider string) (resp *http.Response, body []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, body = nil, nil
			err = Panicked(provider, "the upstream call panicked", r)
		}
	}()
	if (req.Body != nil && req.Body != http.NoBody) || (req.Method != http.MethodGet && req.Method != http.MethodHead) {
		c := *client
		c.CheckRedirect = noRedirects
		client = &c
	}
	resp, err = client.Do(req)
	if err != nil {
		return nil, nil, &UnavailableError{Provider: provider, Reason: "request failed", Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, nil, &UnavailableError{Provider: provider, Reason: fmt.Sprintf("answered %d (a redirect, not followed)", resp.StatusCode)}
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
	if err != nil {
		return nil, nil, &UnavailableError{Provider: provider, Reason: "reading the answer failed", Err: err}
	}
	if len(body) > MaxBodySize {
		return nil, nil, &UnavailableError{Provider: provider, Reason: fmt.Sprintf("answer larger than %d bytes", MaxBodySize)}
	}
	return resp, body, nil
}

// Panicked returns the *UnavailableError for a panic recovered while
// calling provider: reason, and in Err the panic value and the stack of
// the goroutine that panicked, so that it is logged once where the error
// is. Providers recover every panic in the goroutines they start, and in
// Do, with it.
func Panicked(provider, reason string, recovered any) *UnavailableError {
	return &UnavailableError{
		Provider: provider,
		Reason:   reason,
		Err:      fmt.Errorf("panic: %v\n%s", recovered, debug.Stack()),
	}
}

// StatusUnavailable returns the *UnavailableError for an answer whose
// status means the provider could not decide (429, 5xx, anything the
// provider's contract does not name), with the provider's Retry-After.
func StatusUnavailable(provider string, resp *http.Response) error {
	return &UnavailableError{
		Provider:   provider,
		Reason:     fmt.Sprintf("answered %d", resp.StatusCode),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After")),
	}
}

// retryAfter parses a Retry-After value in seconds or as an HTTP date,
// returning zero for anything else or for a wait over an hour.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	if d <= 0 || d > time.Hour {
		return 0
	}
	return d
}
