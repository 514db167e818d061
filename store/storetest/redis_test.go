package storetest

import (
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// handOut makes Start try ports, in order, before any port of its own.
func handOut(t *testing.T, ports ...int) {
	t.Helper()
	t.Cleanup(func() { nextPort = FreePort })
	nextPort = func(tb testing.TB) int {
		if len(ports) == 0 {
			return FreePort(tb)
		}
		p := ports[0]
		ports = ports[1:]
		return p
	}
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return n
}

func pidOf(t *testing.T, s *Server) string {
	t.Helper()
	info, err := redis.String(s.Do("INFO", "server"))
	require.NoError(t, err)
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return v
		}
	}
	t.Fatal("no process_id in INFO")
	return ""
}

// TestStartMovesOnWhenThePortIsTaken: the port Start chose is taken before
// redis-server binds it, by a plain listener or by another redis-server.
// Start notices redis-server exiting and uses another port; it never takes
// the other server for its own.
func TestStartMovesOnWhenThePortIsTaken(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	other := Start(t)
	takenPort, otherPort := portOf(t, taken.Addr().String()), portOf(t, other.Addr)

	handOut(t, takenPort, otherPort)
	s := Start(t)

	assert.NotEqual(t, takenPort, portOf(t, s.Addr))
	assert.NotEqual(t, otherPort, portOf(t, s.Addr))
	assert.Equal(t, strconv.Itoa(s.cmd.Process.Pid), pidOf(t, s), "the server at s.Addr is the one Start ran")
	assert.NotEqual(t, pidOf(t, other), pidOf(t, s))
	_, err = s.Do("SET", "k", "mine")
	require.NoError(t, err)
	v, err := redis.String(other.Do("GET", "k"))
	assert.ErrorIs(t, err, redis.ErrNil, "nothing was written to the other server")
	assert.Empty(t, v)
}

// TestRestartKeepsAddressAndData: Restart comes back on the same port with
// what was persisted.
func TestRestartKeepsAddressAndData(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	s := Start(t, "--appendonly", "yes", "--appendfsync", "always")
	addr, pid := s.Addr, pidOf(t, s)
	_, err := s.Do("SET", "k", "kept")
	require.NoError(t, err)

	s.Restart()

	assert.Equal(t, addr, s.Addr)
	assert.NotEqual(t, pid, pidOf(t, s), "a new process")
	v, err := redis.String(s.Do("GET", "k"))
	require.NoError(t, err)
	assert.Equal(t, "kept", v)
	s.Stop()
	s.Stop() // a second Stop does nothing
	_, err = s.Do("PING")
	assert.Error(t, err, "stopped")
}

// TestSkipIsExplicit: SKIP_REDIS=1 skips with a message naming it; without
// it, a machine with no redis-server fails the test and says how to fix it.
func TestSkipIsExplicit(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	t.Run("SKIP_REDIS=1", func(t *testing.T) {
		t.Setenv(SkipEnv, "1")
		tb := runStart(t)
		assert.True(t, tb.skipped)
		assert.False(t, tb.failed)
		assert.Contains(t, tb.msg, "SKIP_REDIS")
	})
	t.Run("no redis-server", func(t *testing.T) {
		t.Setenv(SkipEnv, "")
		t.Setenv("PATH", t.TempDir())
		_, err := exec.LookPath("redis-server")
		require.Error(t, err)
		tb := runStart(t)
		assert.True(t, tb.failed)
		assert.False(t, tb.skipped)
		assert.Contains(t, tb.msg, "apt-get install redis-server")
		assert.Contains(t, tb.msg, "SKIP_REDIS=1")
	})
}

// recorder is a testing.TB whose Fatal and Skip record what they were told
// and end the goroutine, as the real ones do.
type recorder struct {
	testing.TB
	mu              sync.Mutex
	msg             string
	failed, skipped bool
}

func (r *recorder) end(msg string, failed bool) {
	r.mu.Lock()
	r.msg, r.failed, r.skipped = msg, failed, !failed
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Helper()                           {}
func (r *recorder) Fatal(args ...any)                 { r.end(strings.TrimSpace(fmt.Sprint(args...)), true) }
func (r *recorder) Fatalf(format string, args ...any) { r.end(fmt.Sprintf(format, args...), true) }
func (r *recorder) Skip(args ...any)                  { r.end(strings.TrimSpace(fmt.Sprint(args...)), false) }

// runStart calls Start with a recorder and returns what it recorded.
func runStart(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(r)
		r.mu.Lock()
		r.msg = "Start returned"
		r.mu.Unlock()
	}()
	<-done
	return r
}
