package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/sessiongate/sessiongate/store"
)

// Open returns a store on the Redis deployment rawURL names, with opts
// (the zero Options is the default):
//
//   - a single Redis: redis://[user:password@]host[:port][/db] (port
//     6379 by default), as New on NewPool's pool;
//   - a primary found through Redis Sentinel:
//     redis://[user:password@]sentinel:26379[/db]?master_name=NAME&addr=sentinel2:26379&addr=...
//     (port 26379 by default), where user and password are the primary's
//     and sentinel_username and sentinel_password the sentinels' own
//     (none by default);
//   - Redis Cluster: redis://[user:password@]node:7000?cluster=true&addr=node2:7000...
//     (database 0 only);
//   - rediss:// for any of them: TLS to every server, set by opts.TLS.
//
// Unknown query parameters are refused. Open connects once, within
// opts.Timeout, and returns an error when the URL is malformed (then
// with no store), when it reaches no server (an error wrapping
// store.ErrUnavailable), and when the servers are not what the URL says
// (wrapping store.ErrMisconfigured too, with a sentence that says what to
// change: a plain URL at a Sentinel, a cluster node or a replica; a
// master name the sentinels do not know; see also New's checks). In those
// last two cases it returns the store as well: it works once the
// deployment is fixed, and its Check (the middleware's, /healthz) reports
// the problem until then, for an app that would rather start and say so
// in its health check than exit; such an app must still Close it. This
// holds for every deployment: a Cluster store none of whose seeds
// answered with the layout reads it again when it is used, and until one
// does, fails each operation with the reason (at once, once it is known). No error quotes
// the URL or a password.
//
// On Sentinel, every operation goes to the primary (reads too: a replica
// would show a signed-out session live for the replication lag). The
// store asks every sentinel it knows for the primary, takes the one
// named with the highest configuration epoch, then by most sentinels,
// confirms its ROLE (else tries the next), and asks again after a
// connection error or a READONLY reply. It knows every sentinel of the
// master (the URL's, and those the sentinels list), and one connection
// per sentinel listens for failovers. A write waits while a failover is
// under way, then waits (1 s at most) for the acknowledgement of
// every replica the sentinels list as connected (WAIT), and runs again
// if fewer acknowledged, if a failover began meanwhile, or if a
// sentinel it reaches could not be heard during the write and, asked
// afterwards, does not say that no failover is under way; so a graceful
// failover (SENTINEL FAILOVER) loses no sign-in and undoes no sign-out,
// whichever sentinel leads it. An operation retries within its deadline
// (Options.Timeout) while the primary is replaced (or a replica is
// found down), then fails with store.ErrUnavailable.
//
// With opts.NearCache (single Redis and Sentinel; refused on a Cluster,
// with no store), the store caches sessions in memory: see NearCache.
//
// The store Open returns implements io.Closer: Close stops its
// background goroutines (the Sentinel watchers and their refresher, the
// near cache's link) and
// closes its connections; operations after Close fail with
// store.ErrUnavailable.
func Open(rawURL string, opts Options) (store.Store, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if opts.TLS != nil && !u.tls {
		return nil, errors.New("store: Options.TLS is set but the Redis URL starts with redis:// (no TLS): use rediss://")
	}
	if u.mode == cluster {
		if opts.NearCache != nil {
			return nil, errNearCluster
		}
		return newClusterStore(u.addrs, u.dialOptions(opts.TLS, opts.withDefaults().Timeout), opts)
	}
	var (
		pool *redis.Pool
		set  *sentinelSet
	)
	if u.mode == sentinel {
		set = newSentinelSet(u, opts)
		pool = set.pool()
		opts.sentinels = set
	} else {
		pool = u.singlePool(opts.TLS, opts.withDefaults())
	}
	r := storeOf(New(pool, opts))
	// The pool is the store's alone: its operations take turns (see
	// turns) instead of the pool's own wait.
	pool.Wait = false
	r.turns = newTurns(pool.MaxActive, tickOf(r.opts.Timeout))
	st := &openStore{redisStore: r, pool: pool}
	if set != nil {
		r.guard, st.sentinels = set, set
	}
	if err := r.probe(context.Background()); err != nil {
		return st, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
	defer cancel()
	return st, r.near.problem(ctx)
}

// openStore is the store Open returns: a redisStore that can be closed.
type openStore struct {
	*redisStore
	pool      *redis.Pool
	sentinels *sentinelSet // nil for a single Redis
}

// Close stops the store's background goroutines and closes its pool. It
// returns nil.
func (s *openStore) Close() error {
	s.near.close()
	if s.sentinels != nil {
		s.sentinels.close()
	}
	return s.pool.Close()
}

// probe connects once, as Open's check: a new connection is vetted (not
// a Sentinel or a cluster node; the eviction policy) and the server must
// be a primary (INFO replication; not judged when the user may not run
// INFO).
func (r *redisStore) probe(ctx context.Context) error {
	var problem error
	err := r.with(ctx, func(conn redis.Conn) error {
		info, err := redis.String(do(conn, ctx, "INFO", "replication"))
		if isReply(err) {
			return nil
		}
		if role, ok := infoField(info, "role"); ok && role != "master" {
			problem = errReplica
		}
		return err
	})
	if err != nil {
		return err
	}
	return problem
}

// singlePool returns a pool of connections to u's single server.
func (u *redisURL) singlePool(tlsConfig *tls.Config, o Options) *redis.Pool {
	addr, opts := u.addrs[0], u.dialOptions(tlsConfig, o.Timeout)
	return newPool(o.PoolSize, func(ctx context.Context) (redis.Conn, error) {
		return redis.DialContext(ctx, "tcp", addr, opts...)
	})
}

// newPool returns a pool that dials with dial: at most size connections
// (MaxActive), as many kept when idle (MaxIdle: none is closed for lack
// of room when it returns, so concurrency up to and beyond size opens no
// connection it then closes), for 4 minutes, checked with a PING when
// idle over a minute; Wait set (see NewPool).
func newPool(size int, dial func(context.Context) (redis.Conn, error)) *redis.Pool {
	return &redis.Pool{
		MaxIdle:     size,
		MaxActive:   size,
		IdleTimeout: 4 * time.Minute,
		Wait:        true,
		DialContext: dial,
		TestOnBorrowContext: func(ctx context.Context, c redis.Conn, idleSince time.Time) error {
			if time.Since(idleSince) < time.Minute {
				return nil
			}
			_, err := do(c, ctx, "PING")
			return err
		},
	}
}
