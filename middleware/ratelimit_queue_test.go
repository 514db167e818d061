package middleware

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/store"
)

// heldProvider holds every validation until the test releases it, and
// counts how many run at once. Tokens starting "good" are valid.
type heldProvider struct {
	entered               chan string
	gates                 sync.Map // token → chan struct{}, closed to release it
	ignoreCtx             bool
	calls, inflight, most atomic.Int64
}

func newHeldProvider() *heldProvider {
	return &heldProvider{entered: make(chan string, 16)}
}

func (p *heldProvider) gate(token string) chan struct{} {
	ch, _ := p.gates.LoadOrStore(token, make(chan struct{}))
	return ch.(chan struct{})
}

// release lets token's validation answer.
func (p *heldProvider) release(token string) { close(p.gate(token)) }

func (p *heldProvider) Name() string { return "held" }

func (p *heldProvider) Validate(ctx context.Context, token string) (*provider.Identity, error) {
	p.calls.Add(1)
	n := p.inflight.Add(1)
	defer p.inflight.Add(-1)
	for m := p.most.Load(); n > m && !p.most.CompareAndSwap(m, n); m = p.most.Load() {
	}
	p.entered <- token
	if p.ignoreCtx {
		<-p.gate(token)
	} else {
		select {
		case <-p.gate(token):
		case <-ctx.Done():
			return nil, &provider.UnavailableError{Provider: "held", Reason: "timeout"}
		}
	}
	if strings.HasPrefix(token, "good") {
		return &provider.Identity{UserID: token, Expiry: time.Now().Add(time.Hour)}, nil
	}
	return nil, &provider.InvalidTokenError{Provider: "held", Reason: "bad"}
}

// queueEnv is a middleware whose client address is X-Test-Client, with
// GuessBurst 2, over p.
func queueEnv(t *testing.T, p *heldProvider, mods ...func(*Config)) (*Auth, http.Handler) {
	t.Helper()
	cfg := Config{
		Store:      store.NewMemory(),
		Provider:   p,
		Secret:     "queue-secret-0123456789abcdef",
		GuessBurst: 2,
		ClientIP:   func(r *http.Request) string { return r.Header.Get("X-Test-Client") },
		Logger:     slog.New(slog.DiscardHandler),
	}
	for _, m := range mods {
		m(&cfg)
	}
	a := New(cfg)
	t.Cleanup(func() {
		// Nothing may stay queued once the test's requests are answered.
		for _, k := range a.guesses.Clients() {
			assert.Zero(t, a.guesses.Waiting(k), "client %s", k)
		}
	})
	return a, a.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
}

// waiting returns how many of client's validations hold or wait for its turn.
func waiting(a *Auth, client string) int {
	return a.guesses.Waiting(client)
}

func randomSessionToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// send serves one request from client and returns its status.
func send(h http.Handler, ctx context.Context, client string, hdr map[string]string) int {
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
	r.Header.Set("X-Test-Client", client)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// limit makes client limited: three dead session cookies with a burst of 2.
func limit(t *testing.T, h http.Handler, client string) {
	t.Helper()
	dead := func() map[string]string {
		return map[string]string{"Cookie": DefaultCookieName + "=" + randomSessionToken()}
	}
	for range 3 {
		send(h, context.Background(), client, dead())
	}
	require.Equal(t, http.StatusTooManyRequests, send(h, context.Background(), client, dead()))
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// A limited client's new tokens are validated one at a time, in turn:
// a flood of bad ones keeps one upstream call busy, and the good one
// among them is validated, not refused. Other clients are not queued.
func TestALimitedClientsTokensAreValidatedOneAtATime(t *testing.T) {
	t.Parallel()
	p := newHeldProvider()
	a, h := queueEnv(t, p)
	const nat = "192.0.2.1"
	limit(t, h, nat)

	tokens := []string{"bad-1", "bad-2", "bad-3", "bad-4", "good-colleague"}
	statuses := make([]int, len(tokens))
	var wg sync.WaitGroup
	start := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = send(h, context.Background(), nat, bearer(tokens[i]))
		}()
	}
	start(0)
	require.Equal(t, "bad-1", <-p.entered)
	for i := 1; i < len(tokens); i++ {
		start(i)
	}
	require.Eventually(t, func() bool { return waiting(a, nat) == len(tokens) }, 30*time.Second, time.Millisecond,
		"every request holds or waits for the client's turn")

	// Another address is not queued behind them.
	other := make(chan int)
	go func() { other <- send(h, context.Background(), "198.51.100.1", bearer("good-elsewhere")) }()
	require.Equal(t, "good-elsewhere", <-p.entered)
	p.release("good-elsewhere")
	assert.Equal(t, http.StatusOK, <-other)
	assert.EqualValues(t, 2, p.most.Load(), "the other address ran beside the limited one")
	p.most.Store(1)

	p.release("bad-1")
	for range len(tokens) - 1 {
		token := <-p.entered
		assert.EqualValues(t, 1, p.inflight.Load())
		p.release(token)
	}
	wg.Wait()
	assert.Equal(t, []int{401, 401, 401, 401, 200}, statuses)
	assert.EqualValues(t, 1, p.most.Load(), "never two of the limited client's validations at once")
	assert.EqualValues(t, len(tokens)+1, p.calls.Load())
}

// A queued request whose client leaves gives up its place: its token
// never reaches the provider.
func TestAQueuedRequestThatLeavesCostsNoUpstreamCall(t *testing.T) {
	t.Parallel()
	p := newHeldProvider()
	a, h := queueEnv(t, p)
	const nat = "192.0.2.2"
	limit(t, h, nat)

	first := make(chan int)
	go func() { first <- send(h, context.Background(), nat, bearer("bad-held")) }()
	require.Equal(t, "bad-held", <-p.entered)

	ctx, cancel := context.WithCancel(context.Background())
	left := make(chan int)
	go func() { left <- send(h, ctx, nat, bearer("bad-queued")) }()
	require.Eventually(t, func() bool { return waiting(a, nat) == 2 }, 30*time.Second, time.Millisecond)
	cancel()
	<-left
	require.Eventually(t, func() bool { return waiting(a, nat) == 1 }, 30*time.Second, time.Millisecond,
		"the detached validation left the queue with its client")

	p.release("bad-held")
	assert.Equal(t, http.StatusUnauthorized, <-first)
	assert.EqualValues(t, 1, p.calls.Load(), "the request that left never reached the provider")
}

// A request whose turn does not come within the exchange timeout gets
// 429 with Retry-After, not a 503: the provider is not at fault.
func TestAQueuedRequestThatTimesOutGets429(t *testing.T) {
	t.Parallel()
	p := newHeldProvider()
	p.ignoreCtx = true
	_, h := queueEnv(t, p, func(c *Config) { c.ExchangeTimeout = 100 * time.Millisecond })
	const nat = "192.0.2.3"
	limit(t, h, nat)

	first := make(chan int)
	go func() { first <- send(h, context.Background(), nat, bearer("bad-held")) }()
	require.Equal(t, "bad-held", <-p.entered)

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Test-Client", nat)
	r.Header.Set("Authorization", "Bearer good-but-late")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, "3", w.Header().Get("Retry-After"))
	assert.Contains(t, w.Body.String(), "rate_limited")

	p.release("bad-held")
	<-first
	assert.EqualValues(t, 1, p.calls.Load())
}

// TestLimiterHoldsNoToken: the guess limiter is keyed by client
// addresses, never by a credential a client sent.
func TestLimiterHoldsNoToken(t *testing.T) {
	t.Parallel()
	a, h := queueEnv(t, &heldProvider{})
	junk := randomSessionToken()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Test-Client", "198.51.100.4")
	r.Header.Set("X-Session-Token", junk)
	h.ServeHTTP(httptest.NewRecorder(), r)
	assert.Equal(t, []string{"198.51.100.4"}, a.guesses.Clients())
}
