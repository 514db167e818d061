package provider

import (
	"errors"
	"fmt"
	"io"
	"net/http"
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

// Do sends req with client and reads at most MaxBodySize bytes of the
// answer, closing the body. Every failure is an *UnavailableError naming
// provider: a transport error or timeout, or an answer larger than the cap.
// The status is left for the caller to classify. Do never includes the
// request body (where tokens travel) in an error.
func Do(client *http.Client, req *http.Request, provider string) (*http.Response, []byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, &UnavailableError{Provider: provider, Reason: "request failed", Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
	if err != nil {
		return nil, nil, &UnavailableError{Provider: provider, Reason: "reading the answer failed", Err: err}
	}
	if len(body) > MaxBodySize {
		return nil, nil, &UnavailableError{Provider: provider, Reason: fmt.Sprintf("answer larger than %d bytes", MaxBodySize)}
	}
	return resp, body, nil
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
