// Package storetest starts real redis-server processes for tests.
//
// Start runs a fresh redis-server on a free loopback port for one test (or
// uses REDIS_URL when it is set). When no redis-server can be found the test
// is skipped with a message saying how to get one, except under CI=true,
// where a missing Redis fails the test.
package storetest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Server is a redis-server started for one test.
type Server struct {
	// URL is the server's redis:// URL.
	URL string
	// Addr is its host:port.
	Addr string

	t       testing.TB
	args    []string
	dir     string
	cmd     *exec.Cmd
	managed bool
}

// Start runs redis-server for t, stopped when t ends. extra are more
// redis-server arguments, such as "--appendonly", "yes". Without them the
// server persists nothing.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	if url := os.Getenv("REDIS_URL"); url != "" && len(extra) == 0 {
		return &Server{URL: url, t: t}
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server not found: install it (apt-get install redis-server) or set REDIS_URL"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	port := freePort(t)
	s := &Server{
		URL:     fmt.Sprintf("redis://127.0.0.1:%d/0", port),
		Addr:    fmt.Sprintf("127.0.0.1:%d", port),
		t:       t,
		managed: true,
	}
	s.dir = t.TempDir()
	s.args = append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning",
	}, extra...)
	s.cmd = exec.Command(bin, s.args...)
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// Stop kills the server at once, as a crash would. Stop on a stopped
// server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// Restart stops the server and starts it again on the same port and data
// directory, so what it persisted (with --appendonly yes) survives.
func (s *Server) Restart() {
	s.t.Helper()
	if !s.managed {
		s.t.Fatal("storetest: cannot restart a Redis given by REDIS_URL")
	}
	s.Stop()
	s.cmd = exec.Command(s.cmd.Path, s.args...)
	s.start()
}

// Do runs one command on the server, for inspecting what tests wrote.
func (s *Server) Do(cmd string, args ...any) (any, error) {
	conn, err := redis.DialURL(s.URL, redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(5*time.Second))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.Do(cmd, args...)
}

func (s *Server) start() {
	s.t.Helper()
	logFile := filepath.Join(s.dir, "redis.log")
	if f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		s.cmd.Stdout, s.cmd.Stderr = f, f
		defer f.Close()
	}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("storetest: starting redis-server: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if _, err := s.Do("PING"); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Stop()
	out, _ := os.ReadFile(logFile)
	s.t.Fatalf("storetest: redis-server on %s did not answer within 10s:\n%s", s.Addr, out)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("storetest: no free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
