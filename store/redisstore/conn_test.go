package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/backend/backendtest"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/redisstore"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// Connections, deadlines and faults of the Redis store, against real
// redis-servers.

// sent is one command a connection sent, with its context's deadline.
type sent struct {
	cmd      string
	deadline time.Time // zero: none
}

// recorder records every command sent on a pool's connections.
type recorder struct {
	mu   sync.Mutex
	cmds []sent
}

func (r *recorder) add(cmd string, ctx context.Context) {
	if cmd == "" {
		return // the pool's flush when a connection goes back
	}
	d, _ := ctx.Deadline()
	r.mu.Lock()
	r.cmds = append(r.cmds, sent{strings.ToUpper(cmd), d})
	r.mu.Unlock()
}

// since returns the commands sent after the first n.
func (r *recorder) since(n int) []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sent(nil), r.cmds[n:]...)
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cmds)
}

type recordingConn struct {
	redis.Conn
	rec *recorder
}

func (c recordingConn) Do(cmd string, args ...any) (any, error) {
	c.rec.add(cmd, context.Background())
	return c.Conn.Do(cmd, args...)
}

func (c recordingConn) DoContext(ctx context.Context, cmd string, args ...any) (any, error) {
	c.rec.add(cmd, ctx)
	return redis.DoContext(c.Conn, ctx, cmd, args...)
}

func (c recordingConn) ReceiveContext(ctx context.Context) (any, error) {
	return redis.ReceiveContext(c.Conn, ctx)
}

// redisPool returns a pool from NewPool for srv, changed by mod
// (before any store sees it), whose connections report to rec when it is
// not nil.
func redisPool(t *testing.T, srv *storetest.Server, rec *recorder, mod func(*redis.Pool)) *redis.Pool {
	t.Helper()
	pool, err := redisstore.NewPool(srv.URL)
	require.NoError(t, err)
	if rec != nil {
		dial := pool.DialContext
		pool.DialContext = func(ctx context.Context) (redis.Conn, error) {
			c, err := dial(ctx)
			if err != nil {
				return nil, err
			}
			return recordingConn{c, rec}, nil
		}
	}
	if mod != nil {
		mod(pool)
	}
	t.Cleanup(func() { pool.Close() })
	return pool
}

// userPool returns a pool from NewPool for srv that signs in as user
// with password.
func userPool(t *testing.T, srv *storetest.Server, user, password string) *redis.Pool {
	t.Helper()
	pool, err := redisstore.NewPool(strings.Replace(srv.URL, "redis://", "redis://"+user+":"+password+"@", 1))
	require.NoError(t, err)
	t.Cleanup(func() { pool.Close() })
	return pool
}

// operation is one store method, called the way its callers call it.
type operation struct {
	name string
	run  func(ctx context.Context, st store.Store) error
}

// committer is the method scs's Commit calls on a store that has it.
type committer interface {
	CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error
}

// operations returns every store operation, on a store that holds one
// live session of user "p:ops" with token tok.
func operations(tok string) []operation {
	exp := time.Now().Add(time.Hour)
	fingerprint := []byte("fingerprint-0123456789abcdef0123")
	return []operation{
		{"Find", func(_ context.Context, st store.Store) error { _, _, err := st.Find(tok); return err }},
		{"Lookup", func(ctx context.Context, st store.Store) error {
			_, err := st.Lookup(ctx, format.KeyOf(tok))
			return err
		}},
		{"Commit", func(_ context.Context, st store.Store) error { return st.Commit(tok, []byte("d"), exp) }},
		{"CommitCtx", func(ctx context.Context, st store.Store) error {
			return st.(committer).CommitCtx(ctx, tok, []byte("d"), exp)
		}},
		{"Mint", func(ctx context.Context, st store.Store) error {
			err := st.Mint(ctx, backend.NewSession{Token: token("ops-other", "v"), Record: rec, Data: []byte("d"), Expires: exp, User: "p:ops"})
			if errors.Is(err, backend.ErrConflict) {
				return nil // minted by an earlier run of the table
			}
			return err
		}},
		{"List", func(ctx context.Context, st store.Store) error {
			_, err := backendtest.ListAll(ctx, st, "p:ops")
			return err
		}},
		{"Check", func(ctx context.Context, st store.Store) error { return st.Check(ctx, fingerprint, true) }},
		{"End", func(ctx context.Context, st store.Store) error {
			return st.End(ctx, backend.Ending{Key: format.KeyOf(token("ops-ended", "v")), User: "p:ops", Until: exp})
		}},
		{"Touch", func(ctx context.Context, st store.Store) error { return st.Touch(ctx, tok, rec) }},
	}
}

// lookup is the simplest operation, one GET: the store answers.
func lookup(st store.Store) error {
	_, err := st.Lookup(context.Background(), format.KeyOf(token("lookup", "v")))
	return err
}

// mintOps mints the session operations() expects.
func mintOps(t *testing.T, st store.Store) string {
	t.Helper()
	tok := token("ops", "v")
	err := st.Mint(context.Background(), backend.NewSession{Token: tok, Record: rec, Data: []byte("d"), Expires: time.Now().Add(time.Hour), User: "p:ops"})
	if !errors.Is(err, backend.ErrConflict) { // or minted already
		require.NoError(t, err)
	}
	return tok
}

// A read took two pooled connections at once (the store's, then scs's
// redisstore's), so MaxActive 1 made every session read fail with
// "connection pool exhausted". Every operation must hold one at most.
func TestRedisOperationsHoldOneConnection(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	pool := redisPool(t, srv, nil, func(p *redis.Pool) { p.MaxActive, p.Wait = 1, false })
	st := redisstore.New(pool, redisstore.Options{})
	tok := mintOps(t, st)
	for _, op := range operations(tok) {
		assert.NoError(t, op.run(context.Background(), st), "%s with a pool of one connection", op.name)
	}
}

// With every connection of the pool taken, an operation waits at most
// its deadline (Wait) or fails at once (no Wait): never hangs.
func TestRedisPoolWaitIsBounded(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	for _, wait := range []bool{true, false} {
		t.Run(fmt.Sprintf("wait=%v", wait), func(t *testing.T) {
			pool := redisPool(t, srv, nil, func(p *redis.Pool) { p.MaxActive, p.Wait = 1, wait })
			// The session is minted through a store with the default
			// timeout: a first mint (dial, checks, the script's load) may
			// take longer than 100 ms on a busy machine.
			tok := mintOps(t, redisstore.New(pool, redisstore.Options{}))
			st := redisstore.New(pool, redisstore.Options{Timeout: 100 * time.Millisecond})
			held := pool.Get() // the only connection, taken
			defer held.Close()
			_, err := held.Do("PING")
			require.NoError(t, err)

			for _, op := range operations(tok) {
				err := finishes(t, func() error { return op.run(context.Background(), st) })
				assert.ErrorIs(t, err, store.ErrUnavailable, op.name)
				if wait {
					assert.ErrorIs(t, err, context.DeadlineExceeded, op.name)
					assert.EqualError(t, err, "store: unavailable: redis: timeout", op.name)
				} else {
					assert.EqualError(t, err, "store: unavailable: redis: connection pool exhausted", op.name)
				}
			}
		})
	}
}

// finishes runs fn and returns its error, failing the test if it has not
// returned within 20 s (a hang, whatever the machine's speed).
func finishes(t *testing.T, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("the operation hung")
		return nil
	}
}

// Every command of every operation runs under one deadline: the store's
// Timeout from the operation's start, or the caller's when it is earlier.
// scs's Commit and Delete had none, and reads went through redisstore
// with none.
func TestRedisOperationsRunUnderOneDeadline(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	rec := &recorder{}
	const timeout = 3 * time.Second
	st := redisstore.New(redisPool(t, srv, rec, nil), redisstore.Options{Timeout: timeout})
	tok := mintOps(t, st)
	for _, op := range operations(tok) {
		t.Run(op.name+"/store deadline", func(t *testing.T) {
			n := rec.len()
			before := time.Now()
			require.NoError(t, op.run(context.Background(), st))
			after := time.Now()
			cmds := rec.since(n)
			require.NotEmpty(t, cmds)
			for _, c := range cmds {
				require.False(t, c.deadline.IsZero(), "%s ran without a deadline", c.cmd)
				assert.Equal(t, cmds[0].deadline, c.deadline, "%s: one deadline for the whole operation", c.cmd)
				assert.False(t, c.deadline.Before(before.Add(timeout)), "%s: the deadline is the store's Timeout", c.cmd)
				assert.False(t, c.deadline.After(after.Add(timeout)), "%s: the deadline is the store's Timeout", c.cmd)
			}
		})
	}
	for _, op := range operations(tok) {
		if op.name == "Find" || op.name == "Commit" {
			continue // no context to take a deadline from
		}
		t.Run(op.name+"/caller's deadline", func(t *testing.T) {
			deadline := time.Now().Add(time.Second) // before the store's
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			n := rec.len()
			require.NoError(t, op.run(ctx, st))
			for _, c := range rec.since(n) {
				assert.Equal(t, deadline, c.deadline, "%s runs under the caller's earlier deadline", c.cmd)
			}
		})
	}
}

// A Redis that stops answering (a long command, a paused or stopped
// process) costs one attempt and an ErrUnavailable "timeout" at the
// deadline, not a retry that doubles the wait.
func TestRedisStallFailsAtTheDeadline(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t, "--loglevel", "warning") // a server of this test's own, which it stops
	rec := &recorder{}
	st := redisstore.New(redisPool(t, srv, rec, nil), redisstore.Options{Timeout: 300 * time.Millisecond})
	tok := mintOps(t, st)
	resume := srv.Stall()

	for _, op := range operations(tok) {
		n := rec.len()
		err := finishes(t, func() error { return op.run(context.Background(), st) })
		assert.ErrorIs(t, err, store.ErrUnavailable, op.name)
		assert.ErrorIs(t, err, context.DeadlineExceeded, op.name)
		assert.EqualError(t, err, "store: unavailable: redis: timeout", op.name)
		assert.Len(t, rec.since(n), 1, "%s: one command sent, no retry after a timeout", op.name)
	}
	resume()
	for _, op := range operations(tok) {
		assert.NoError(t, op.run(context.Background(), st), "%s after the stall", op.name)
	}
}

// Connections that Redis closed (CLIENT KILL, a restart) cost nothing:
// each operation that meets one runs again on a checked connection, and
// those pooled since are checked before reuse.
func TestRedisKilledConnectionsAreRetried(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t, "--loglevel", "warning") // a server of this test's own, whose clients it kills
	pool := redisPool(t, srv, nil, nil)
	st := redisstore.New(pool, redisstore.Options{})
	tok := mintOps(t, st)
	for _, op := range operations(tok) {
		// Several pooled connections, all idle, then all killed.
		var conns []redis.Conn
		for range 4 {
			c := pool.Get()
			_, err := c.Do("PING")
			require.NoError(t, err)
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
		killed, err := redis.Int(srv.Do("CLIENT", "KILL", "TYPE", "normal"))
		require.NoError(t, err)
		require.GreaterOrEqual(t, killed, 4)
		assert.NoError(t, op.run(context.Background(), st), "%s after CLIENT KILL", op.name)
	}
}

// Redis's error replies can echo a command's arguments ("ERR unknown
// command 'GET', with args beginning with: 'sg:s:<key>'"): store keys,
// user ids, verifier bytes. No error of the store may carry them; it says
// the error's class.
func TestRedisErrorsCarryNoServerText(t *testing.T) {
	t.Parallel()
	var extra []string
	for _, cmd := range []string{"GET", "SET", "EVALSHA", "EVAL", "ZRANGE", "MGET"} { // PING stays: storetest needs it
		extra = append(extra, "--rename-command", cmd, "")
	}
	srv := storetest.Start(t, extra...)
	st := redisstore.New(redisPool(t, srv, nil, nil), redisstore.Options{})
	tok := token("ops", "v")
	for _, op := range operations(tok) {
		err := op.run(context.Background(), st)
		require.Error(t, err, op.name)
		assert.ErrorIs(t, err, store.ErrUnavailable, op.name)
		assert.Contains(t, err.Error(), "error reply ERR", op.name)
		for _, secret := range []string{"sg:", "p:ops", format.KeyOf(tok), "unknown", "args", "fingerprint-"} {
			assert.NotContains(t, err.Error(), secret, op.name)
		}
	}
}

// Errors of the store's own making name their class: a refused dial, a
// refused password (never the password).
func TestRedisErrorReasons(t *testing.T) {
	t.Parallel()
	t.Run("refused", func(t *testing.T) {
		srv := storetest.Start(t)
		st := redisstore.New(redisPool(t, srv, nil, nil), redisstore.Options{})
		srv.Stop()
		err := lookup(st)
		assert.ErrorIs(t, err, store.ErrUnavailable)
		assert.EqualError(t, err, "store: unavailable: redis: connection refused")
	})
	t.Run("wrong password", func(t *testing.T) {
		srv := storetest.Start(t)
		_, err := srv.Do("ACL", "SETUSER", "app", "on", ">the-right-one", "~*", "&*", "+@all")
		require.NoError(t, err)
		err = lookup(redisstore.New(userPool(t, srv, "app", "hunter2"), redisstore.Options{}))
		assert.ErrorIs(t, err, store.ErrUnavailable)
		assert.EqualError(t, err, "store: unavailable: redis: WRONGPASS: authentication failed")
	})
}
