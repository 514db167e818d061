// Package storetest starts real redis-server processes for tests.
//
// Start runs a fresh redis-server on a free loopback port for one test (or
// never a Redis of yours). A missing redis-server fails the test
// with a message saying how to get one: skipping the Redis tests is an
// explicit choice, made by setting SKIP_REDIS=1 (make test SKIP_REDIS=1),
// which skips them with a message naming the variable.
//
// Nothing here depends on the machine's speed or on a port staying free:
// ports come from below the kernel's ephemeral range (so no test's
// 127.0.0.1:0 listener or outgoing connection takes them in the meantime),
// a redis-server that exits because its port was taken after all is
// started again on another port, and a server counts as started only when
// the process answering on the port is the one Start ran.
package storetest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// SkipEnv is the environment variable that, set to a true value ("1",
// "true"), makes Start skip the calling test instead of running Redis.
const SkipEnv = "SKIP_REDIS"

// startTimeout bounds how long Start waits for a redis-server that neither
// answers nor exits. It is generous on purpose: it only ends a test whose
// Redis is broken, it never measures a working one.
const startTimeout = 60 * time.Second

// bindAttempts is how many ports Start tries when each one turns out to be
// taken by the time redis-server binds it.
const bindAttempts = 20

// Server is a redis-server started for one test.
type Server struct {
	// URL is the server's redis:// URL.
	URL string
	// Addr is its host:port.
	Addr string

	t      testing.TB
	bin    string
	first  []string // arguments before the common ones (a config file)
	args   []string
	auth   []redis.DialOption // credentials of Do and of the start check
	dir    string
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has exited
}

// Start runs redis-server for t, stopped when t ends. extra are more
// redis-server arguments, such as "--appendonly", "yes". Without them the
// server persists nothing.
//
// Start skips t when SKIP_REDIS is set, and otherwise fails t when
// redis-server is not on PATH or does not start. It never uses a Redis of
// yours (REDIS_URL is the example app's, not the tests'): the tests run
// FLUSHALL, CONFIG SET and ACL SETUSER on the servers they start. A port taken between its choice and
// redis-server's bind is detected from redis-server exiting with "Address
// already in use", and Start tries another port (up to 20).
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	if skip, _ := strconv.ParseBool(os.Getenv(SkipEnv)); skip {
		t.Skip("storetest: Redis test skipped because " + SkipEnv + " is set")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("storetest: redis-server not found: install it (apt-get install redis-server), " +
			"or skip the Redis tests with " + SkipEnv + "=1")
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	s.startOnAPort(extra)
	return s
}

// startOnAPort starts s with extra on a free port, for Start and
// StartSentinel.
func (s *Server) startOnAPort(extra []string) {
	t := s.t
	t.Helper()
	t.Cleanup(s.Stop)
	for range bindAttempts {
		port := nextPort(t)
		s.URL = fmt.Sprintf("redis://127.0.0.1:%d/0", port)
		s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
		s.args = append(append(s.first[:len(s.first):len(s.first)],
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", s.dir,
			"--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning"), extra...)
		if s.start() {
			return
		}
	}
	t.Fatalf("storetest: every one of %d ports was taken before redis-server could bind it", bindAttempts)
}

// Stop kills the server at once, as a crash would, and waits for it to
// exit. Stop on a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Kill()
	<-s.exited
}

// Restart stops the server and starts it again on the same port and data
// directory, so what it persisted (with --appendonly yes) survives. It
// fails the test if another process took the port meanwhile: the test's
// clients know only this address.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if !s.start() {
		s.t.Fatalf("storetest: restarting redis-server: another process took %s while it was stopped", s.Addr)
	}
}

// Stall stops the server's process (SIGSTOP) until resume is called or the
// test ends: connections stay open and commands are accepted, but nothing
// answers, as with a Redis frozen by a long command or a paused VM.
func (s *Server) Stall() (resume func()) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("storetest: stalling redis-server: %v", err)
	}
	resume = func() { s.cmd.Process.Signal(syscall.SIGCONT) }
	s.t.Cleanup(resume)
	return resume
}

// Do runs one command on the server, for inspecting what tests wrote.
func (s *Server) Do(cmd string, args ...any) (any, error) {
	conn, err := redis.DialURL(s.URL, append([]redis.DialOption{redis.DialConnectTimeout(30 * time.Second),
		redis.DialReadTimeout(30 * time.Second)}, s.auth...)...)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.Do(cmd, args...)
}

// start runs redis-server with s.args and waits until it answers. It
// returns false when redis-server exited because its port was taken, and
// fails the test for any other failure.
func (s *Server) start() bool {
	s.t.Helper()
	logFile := filepath.Join(s.dir, "redis.log")
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatalf("storetest: %v", err)
	}
	defer f.Close()
	from, _ := f.Seek(0, 2) // this run's lines start here
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("storetest: starting redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited

	log := func() []byte {
		b, _ := os.ReadFile(logFile)
		if int64(len(b)) >= from {
			b = b[from:]
		}
		return b
	}
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-exited:
			out := log()
			if bytes.Contains(out, []byte("Address already in use")) {
				return false
			}
			s.t.Fatalf("storetest: redis-server on %s exited (%v):\n%s", s.Addr, cmd.ProcessState, out)
		case <-deadline.C:
			s.Stop()
			s.t.Fatalf("storetest: redis-server on %s neither answered nor exited within %v:\n%s", s.Addr, startTimeout, log())
		case <-poll.C:
			if s.answers(cmd.Process.Pid) {
				return true
			}
		}
	}
}

// answers reports whether the redis-server answering on s.Addr is the
// process pid, not another one that holds the port. Its timeouts are
// short because whatever holds the port may never answer (a listener that
// is not Redis); they decide nothing: start asks again until its own
// generous deadline.
func (s *Server) answers(pid int) bool {
	conn, err := redis.Dial("tcp", s.Addr, append([]redis.DialOption{redis.DialConnectTimeout(time.Second),
		redis.DialReadTimeout(time.Second), redis.DialWriteTimeout(time.Second)}, s.auth...)...)
	if err != nil {
		return false
	}
	defer conn.Close()
	// Ours, and done loading its data (a restart with persistence loads
	// it first and answers LOADING meanwhile; a Sentinel has no data).
	info, err := redis.String(conn.Do("INFO", "server", "persistence"))
	if err != nil {
		return false
	}
	ours, loaded := false, true
	for line := range strings.Lines(info) {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "process_id:"); ok {
			ours = v == strconv.Itoa(pid)
		}
		if v, ok := strings.CutPrefix(line, "loading:"); ok {
			loaded = v == "0"
		}
	}
	return ours && loaded
}

// nextPort is FreePort; tests of this package replace it to hand Start a
// port that is already taken.
var nextPort = FreePort

// FreePort returns a loopback port that is free now, for a server a test
// starts as another process. It draws at random from below the kernel's
// ephemeral range, which the ports of 127.0.0.1:0 listeners and of
// outgoing connections come from, so other tests do not take it before
// the server binds it (a server started elsewhere on a port of its own
// choosing still may: the caller should detect the failed bind and try
// again with another port, as Start does). Where the ephemeral range
// leaves no room below it, the kernel picks the port.
func FreePort(t testing.TB) int {
	t.Helper()
	low, high := 16384, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				high = n
			}
		}
	}
	for range 100 {
		if high-low < 1000 {
			break
		}
		port := low + rand.IntN(high-low)
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			l.Close()
			return port
		}
	}
	// No room below the ephemeral range: let the kernel choose one.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("storetest: no free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Fill makes the server full under maxmemory-policy noeviction: 2 MiB of
// keys of its own ("fill:N"), then a maxmemory below the memory they use,
// so that every write is refused with OOM. (Filling up to a maxmemory is
// not enough: the refused command's own buffer tips it over, and is freed
// with it.)
func (s *Server) Fill() {
	s.t.Helper()
	big := strings.Repeat("x", 64<<10)
	for i := range 32 {
		if _, err := s.Do("SET", "fill:"+strconv.Itoa(i), big); err != nil {
			s.t.Fatalf("storetest: filling: %v", err)
		}
	}
	info, err := redis.String(s.Do("INFO", "memory"))
	if err != nil {
		s.t.Fatalf("storetest: INFO memory: %v", err)
	}
	used := 0
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			used, _ = strconv.Atoi(v)
		}
	}
	if used <= 2<<20 {
		s.t.Fatalf("storetest: filled, but Redis uses only %d bytes", used)
	}
	if _, err := s.Do("CONFIG", "SET", "maxmemory-policy", "noeviction", "maxmemory", used-(1<<20)); err != nil {
		s.t.Fatalf("storetest: CONFIG SET maxmemory: %v", err)
	}
}
