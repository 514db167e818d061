package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/gomodule/redigo/redis"
)

// Redis is a Store in Redis (7.0 or later), through scs's redisstore and a
// redigo pool. Keys:
//
//	sg:s:<Key>   a session (framed with its validator's hash), or the mark of an ended one, with its expiry
//	sg:u:<user>  sorted set of the user's session keys scored by expiry (ms)
//
// A session with a typical identity takes under 400 bytes of Redis memory,
// index included. Writes that belong together run in one round trip (a
// script or MULTI/EXEC). Nothing scans the keyspace: no KEYS, no SCAN. It
// is safe for concurrent use.
type Redis struct {
	pool *redis.Pool
	scs  *redisstore.RedisStore
	// droppedAt is when (unix ns) a connection was last found dead: pooled
	// connections idle since before then are checked before reuse.
	droppedAt atomic.Int64
}

const (
	sessionPrefix = "sg:s:"
	userPrefix    = "sg:u:"
)

// NewRedis returns a store that keeps sessions in the Redis behind pool.
// Call it before the pool is used: it wraps pool.TestOnBorrow so that,
// once a connection has been found dead (Redis restarted, a network
// blip), every pooled connection idle since then is checked with a PING
// before reuse. With that, and one retry of an operation whose connection
// was dead, the store recovers from a Redis restart at the first request
// after it, without restarting the app.
func NewRedis(pool *redis.Pool) *Redis {
	r := &Redis{pool: pool, scs: redisstore.NewWithPrefix(pool, sessionPrefix)}
	next := pool.TestOnBorrow
	pool.TestOnBorrow = func(c redis.Conn, idleSince time.Time) error {
		if idleSince.UnixNano() <= r.droppedAt.Load() {
			_, err := c.Do("PING")
			return err
		}
		if next != nil {
			return next(c, idleSince)
		}
		return nil
	}
	return r
}

// with runs op on a pooled connection. If the connection turns out to be
// dead (not an error Redis answered), it runs op once more on another
// (pooled ones idle since then are checked first, or a new one is dialled):
// every operation of this store is safe to repeat (reads, or writes that
// are conditional or idempotent).
func (r *Redis) with(ctx context.Context, op func(conn redis.Conn) error) error {
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var conn redis.Conn
		if conn, err = r.pool.GetContext(ctx); err != nil {
			break // no connection to be had: retrying would only wait twice
		}
		err = op(conn)
		conn.Close()
		if err == nil || !r.dropped(ctx, err) {
			break
		}
	}
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// dropped reports whether err is a dead connection rather than an answer,
// and notes the time.
func (r *Redis) dropped(ctx context.Context, err error) bool {
	var answered redis.Error
	if ctx.Err() != nil || errors.As(err, &answered) || errors.Is(err, redis.ErrNil) {
		return false
	}
	r.droppedAt.Store(time.Now().UnixNano())
	return true
}

// NewRedisPool returns a redigo pool for a redis:// or rediss:// URL
// (redis://[:password@]host:port/db), with the timeouts a request path
// needs: 2 s to connect, 2 s per read or write, idle connections checked
// after a minute. The URL is checked here; no connection is made yet. The
// error never contains the URL's password.
func NewRedisPool(rawURL string) (*redis.Pool, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return nil, fmt.Errorf("store: %q is not a redis:// URL", redactURL(rawURL))
	}
	opts := []redis.DialOption{
		redis.DialConnectTimeout(2 * time.Second),
		redis.DialReadTimeout(2 * time.Second),
		redis.DialWriteTimeout(2 * time.Second),
	}
	return &redis.Pool{
		MaxIdle:     64,
		IdleTimeout: 4 * time.Minute,
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			return redis.DialURLContext(ctx, rawURL, opts...)
		},
		TestOnBorrow: func(c redis.Conn, idleSince time.Time) error {
			if time.Since(idleSince) < time.Minute {
				return nil
			}
			_, err := c.Do("PING")
			return err
		},
	}, nil
}

// Find returns the data of token's session if token's validator opens
// it: one GET.
func (r *Redis) Find(token string) ([]byte, bool, error) {
	return r.FindCtx(context.Background(), token)
}

// FindCtx is Find; a context from Prefetched answers without a read.
func (r *Redis) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	return find(ctx, token, func(key [keyLen]byte) (raw []byte, found bool, err error) {
		err = r.with(ctx, func(redis.Conn) (err error) {
			raw, found, err = r.scs.Find(string(key[:])) // redisstore takes its own connection
			return err
		})
		return raw, found, err
	})
}

// commitScript replaces a live session's data, keeping its frame, if the
// token's verifier still matches: a session ended or minted anew meanwhile
// is left alone.
var commitScript = redis.NewScript(1, `
local cur = redis.call('GET', KEYS[1])
if not cur or string.sub(cur, 1, 17) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], string.sub(cur, 1, 25) .. ARGV[2], 'PX', ARGV[3])
return 1`)

// Commit updates the data and expiry of token's session if token's
// validator still opens it, in one round trip.
func (r *Redis) Commit(token string, data []byte, expires time.Time) error {
	sel, val, ok := split(token)
	if !ok {
		return nil
	}
	ttl := r.ttl(expires)
	if ttl <= 0 {
		return r.Delete(token)
	}
	v := verifier(val)
	return r.with(context.Background(), func(conn redis.Conn) error {
		_, err := commitScript.Do(conn, sessionPrefix+KeyOf(sel), v[:], data, ttl)
		return err
	})
}

var deleteScript = redis.NewScript(1, `
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, 17) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0`)

// Delete removes token's session if token's validator opens it.
func (r *Redis) Delete(token string) error {
	sel, val, ok := split(token)
	if !ok {
		return nil
	}
	v := verifier(val)
	return r.with(context.Background(), func(conn redis.Conn) error {
		_, err := deleteScript.Do(conn, sessionPrefix+KeyOf(sel), v[:])
		return err
	})
}

// Lookup returns what is stored at key: one GET.
func (r *Redis) Lookup(ctx context.Context, key string) (Stored, error) {
	var raw []byte
	err := r.with(ctx, func(conn redis.Conn) (err error) {
		raw, err = redis.Bytes(redis.DoContext(conn, ctx, "GET", sessionPrefix+key))
		if errors.Is(err, redis.ErrNil) {
			return nil
		}
		return err
	})
	if err != nil {
		return Stored{}, err
	}
	return stored(raw), nil
}

// mintScript writes a session and its index entry if the key still holds
// what the caller saw (ARGV[5], "" for nothing). The index keeps live
// members only and expires with its last session: NX sets an expiry on a
// new index, GT only ever extends it.
var mintScript = redis.NewScript(2, `
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[5] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[6])
redis.call('PEXPIREAT', KEYS[2], ARGV[3], 'NX')
redis.call('PEXPIREAT', KEYS[2], ARGV[3], 'GT')
return 1`)

// Mint writes the session and its index entry in one script, if the key
// still holds what m.Replace was read from.
func (r *Redis) Mint(ctx context.Context, m Mint) error {
	sel, val, ok := split(m.Token)
	if !ok || m.User == "" {
		return errBadMint
	}
	ttl := r.ttl(m.Expires)
	if ttl <= 0 {
		return nil
	}
	key := KeyOf(sel)
	value := frame(val, m.Nonce, m.Data)
	done := 0
	err := r.with(ctx, func(conn redis.Conn) (err error) {
		// A retry after a lost answer finds this very value and reports a
		// conflict: the caller then looks the key up and finds it minted.
		done, err = redis.Int(mintScript.DoContext(ctx, conn, sessionPrefix+key, userPrefix+m.User,
			value, ttl, m.Expires.UnixMilli(), time.Now().UnixMilli(), m.Replace.raw, key))
		return err
	})
	switch {
	case err != nil:
		return err
	case done != 1:
		return ErrConflict
	}
	return nil
}

// End marks sessions ended and drops them from their users' indexes, in
// one MULTI.
func (r *Redis) End(ctx context.Context, ends ...End) error {
	if len(ends) == 0 {
		return nil
	}
	return r.transaction(ctx, func(conn redis.Conn) {
		for _, e := range ends {
			if ttl := r.ttl(e.Until); ttl > 0 {
				conn.Send("SET", sessionPrefix+e.Key, ended, "PX", ttl)
			} else {
				conn.Send("DEL", sessionPrefix+e.Key)
			}
			if e.User != "" {
				conn.Send("ZREM", userPrefix+e.User, e.Key)
			}
		}
	})
}

// Sessions returns user's live sessions: the index's live members, then
// their data in one MGET. Members whose session is gone are removed.
func (r *Redis) Sessions(ctx context.Context, user string) ([]Entry, error) {
	idx := userPrefix + user
	var (
		keys   []string
		values [][]byte
	)
	err := r.with(ctx, func(conn redis.Conn) (err error) {
		keys, err = redis.Strings(redis.DoContext(conn, ctx, "ZRANGE", idx, time.Now().UnixMilli(), "+inf", "BYSCORE"))
		if err != nil || len(keys) == 0 {
			return err
		}
		args := make([]any, len(keys))
		for i, k := range keys {
			args[i] = sessionPrefix + k
		}
		values, err = redis.ByteSlices(redis.DoContext(conn, ctx, "MGET", args...))
		return err
	})
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	entries := make([]Entry, 0, len(keys))
	var gone []any
	for i, v := range values {
		s := stored(v)
		if !s.Live() {
			gone = append(gone, keys[i])
			continue
		}
		entries = append(entries, Entry{Key: keys[i], Data: s.Data})
	}
	if len(gone) > 0 {
		// Best effort: a failure here leaves entries a later call drops.
		r.with(ctx, func(conn redis.Conn) error {
			_, err := redis.DoContext(conn, ctx, "ZREM", append([]any{idx}, gone...)...)
			return err
		})
	}
	return entries, nil
}

// Ping sends PING.
func (r *Redis) Ping(ctx context.Context) error {
	return r.with(ctx, func(conn redis.Conn) error {
		_, err := redis.DoContext(conn, ctx, "PING")
		return err
	})
}

// transaction sends the commands queued by fill in one MULTI/EXEC round
// trip.
func (r *Redis) transaction(ctx context.Context, fill func(redis.Conn)) error {
	return r.with(ctx, func(conn redis.Conn) error {
		conn.Send("MULTI")
		fill(conn)
		_, err := redis.DoContext(conn, ctx, "EXEC")
		return err
	})
}

// ttl returns the milliseconds left until t, at least 1 when t is after
// now.
func (r *Redis) ttl(t time.Time) int64 {
	d := t.Sub(time.Now())
	if d <= 0 {
		return 0
	}
	return max(d.Milliseconds(), 1)
}

func unavailable(err error) error {
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	return u.Redacted()
}
