package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testLimits are productionLimits made short, so that a slow client is
// cut off within the test; they are still far above what a request on
// loopback needs, so no healthy request here is ever cut.
var testLimits = serverLimits{
	ReadHeader:     2 * time.Second,
	Read:           2 * time.Second,
	Write:          30 * time.Second,
	Idle:           2 * time.Second,
	MaxHeaderBytes: 4 << 10,
	MaxBodyBytes:   1 << 10,
}

// clientPatience is how long a test client waits for the server to act
// before it gives up and fails the test: far beyond every limit above.
const clientPatience = 60 * time.Second

// serveApp serves the dev-mode app through newServer with l, on a
// listener the test holds, and returns its address.
func serveApp(t *testing.T, l serverLimits) string {
	t.Helper()
	cfg, err := configFrom(func(string) string { return "" })
	require.NoError(t, err)
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(a.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := newServer("", a.handler, l)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// dial opens a raw connection that gives up after clientPatience.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(clientPatience)))
	return c
}

// trickle writes b one byte at a time, every interval, until it is all
// written, the server stops taking it, or stop is closed.
func trickle(c net.Conn, b string, interval time.Duration, stop <-chan struct{}) {
	for i := range len(b) {
		select {
		case <-stop:
			return
		case <-time.After(interval):
		}
		if _, err := c.Write([]byte{b[i]}); err != nil {
			return
		}
	}
}

// closedByServer reads c to its end and reports whether the server closed
// it (end of stream or reset), as opposed to the client giving up.
func closedByServer(t *testing.T, c net.Conn) (string, bool) {
	t.Helper()
	var got strings.Builder
	_, err := io.Copy(&got, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return got.String(), false
	}
	return got.String(), err == nil || errors.Is(err, syscall.ECONNRESET)
}

// healthy asserts that an ordinary request gets its answer.
func healthy(t *testing.T, addr string) {
	t.Helper()
	client := &http.Client{Timeout: clientPatience}
	res, err := client.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
}

// TestServerCutsOffSlowClients: a client that sends its body, its headers
// or its next request slowly is disconnected by the server (the read
// timeouts), and the app keeps answering others meanwhile and after.
func TestServerCutsOffSlowClients(t *testing.T) {
	t.Parallel()
	addr := serveApp(t, testLimits)
	cases := map[string]struct {
		head, slow string // sent at once, then one byte every 50 ms
		first      bool   // the client gets an answer before the close
	}{
		// The incident: POST /auth/session with a body sent a byte at a
		// time. The body fits the limit; only its pace is the problem.
		"slow body": {
			head:  "POST /auth/session HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
			slow:  strings.Repeat("b", 1000),
			first: true, // the app answers once the read timeout ends the body
		},
		"slow chunked body": {
			head: "POST /auth/session HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
			slow: strings.Repeat("1\r\nb\r\n", 200) + "0\r\n\r\n",
		},
		"slow headers": {
			head: "GET /healthz HTTP/1.1\r\nHost: x\r\n",
			slow: strings.Repeat("X-Pad: y\r\n", 100) + "\r\n",
		},
		"idle keep-alive": {
			head:  "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
			first: true,
		},
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	t.Run("clients", func(t *testing.T) {
		for name, c := range cases {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				conn := dial(t, addr)
				_, err := io.WriteString(conn, c.head)
				require.NoError(t, err)
				go trickle(conn, c.slow, 50*time.Millisecond, stop)

				got, closed := closedByServer(t, conn)
				assert.True(t, closed, "the server closed the connection (got %q)", got)
				if c.first {
					assert.True(t, strings.HasPrefix(got, "HTTP/1.1 "), "answered first: %q", got)
				}
			})
		}
	})
	healthy(t, addr)
}

// TestServerAnswersWhileSlowClientsWait: many slow-body clients at once do
// not keep /healthz from answering, and each of them is disconnected.
func TestServerAnswersWhileSlowClientsWait(t *testing.T) {
	t.Parallel()
	addr := serveApp(t, testLimits)
	const clients = 50
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	conns := make([]net.Conn, clients)
	for i := range conns {
		conns[i] = dial(t, addr)
		_, err := io.WriteString(conns[i], "POST /auth/session HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nb")
		require.NoError(t, err)
		go trickle(conns[i], strings.Repeat("b", 999), 50*time.Millisecond, stop)
	}
	healthy(t, addr)

	closed := 0
	for _, c := range conns {
		if _, ok := closedByServer(t, c); ok {
			closed++
		}
	}
	assert.Equal(t, clients, closed, "every slow client was disconnected by the server")
	healthy(t, addr)
}

// TestServerRefusesOversizedRequests: bodies over MaxBodyBytes get 413
// whatever their framing, headers over MaxHeaderBytes get 431, and a body
// within the limit reaches the handler.
func TestServerRefusesOversizedRequests(t *testing.T) {
	t.Parallel()
	addr := serveApp(t, testLimits)
	big := strings.Repeat("x", int(testLimits.MaxBodyBytes)+1)
	chunked := func(body string) string { return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body) }
	cases := map[string]struct {
		request string
		status  int
		errCode string
	}{
		"declared body over the limit": {
			"POST /auth/session HTTP/1.1\r\nHost: x\r\nContent-Length: " + fmt.Sprint(len(big)) + "\r\n\r\n" + big,
			http.StatusRequestEntityTooLarge, "request_too_large",
		},
		"declared, not sent": {
			"POST /auth/session HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n",
			http.StatusRequestEntityTooLarge, "request_too_large",
		},
		"chunked body over the limit": {
			"POST /auth/session HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(big),
			http.StatusRequestEntityTooLarge, "request_too_large",
		},
		"headers over the limit": {
			"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("p", 2*testLimits.MaxHeaderBytes+4096) + "\r\n\r\n",
			http.StatusRequestHeaderFieldsTooLarge, "",
		},
		"chunked body within the limit": {
			"POST /dev/token?user=ada HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(big[1:]),
			http.StatusOK, "",
		},
		"declared body within the limit": {
			"POST /dev/token?user=ada HTTP/1.1\r\nHost: x\r\nContent-Length: " + fmt.Sprint(len(big)-1) + "\r\n\r\n" + big[1:],
			http.StatusOK, "",
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			conn := dial(t, addr)
			_, err := io.WriteString(conn, c.request)
			require.NoError(t, err)
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err)
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			assert.Equal(t, c.status, res.StatusCode, string(body))
			if c.errCode != "" {
				assert.JSONEq(t, fmt.Sprintf(`{"error":%q,"message":"request bodies are limited to %d bytes"}`, c.errCode, testLimits.MaxBodyBytes), string(body))
				assert.True(t, res.Close, "the connection is closed, the rest of the body unread")
			}
		})
	}
	healthy(t, addr)
}

// TestProductionLimits: every limit is set, and the write limit leaves an
// exchange its whole time (the middleware's default ExchangeTimeout, 10 s).
func TestProductionLimits(t *testing.T) {
	t.Parallel()
	srv := newServer(":0", http.NotFoundHandler(), productionLimits)
	assert.Positive(t, srv.ReadHeaderTimeout)
	assert.Positive(t, srv.ReadTimeout)
	assert.Positive(t, srv.IdleTimeout)
	assert.Positive(t, srv.MaxHeaderBytes)
	assert.Positive(t, productionLimits.MaxBodyBytes)
	assert.Greater(t, srv.WriteTimeout, 10*time.Second, "longer than an exchange may take")
	assert.GreaterOrEqual(t, srv.MaxHeaderBytes, 8<<10+4<<10, "an 8 KiB token and a cookie fit")
}
