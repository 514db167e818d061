package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/gomodule/redigo/redis"
)

// Redis is a Store in Redis (7.0 or later), through scs's redisstore and a
// redigo pool. Keys:
//
//	scs:session:<Key(token)>     the session, with its expiry (redisstore's layout)
//	sessiongate:link:<link key>  a link or tombstone, with its expiry
//	sessiongate:user:<user>      sorted set of the user's session keys scored by expiry (ms)
//
// Every write that belongs together goes in one MULTI/EXEC. Nothing scans
// the keyspace: no KEYS, no SCAN. It is safe for concurrent use.
type Redis struct {
	pool *redis.Pool
	scs  *redisstore.RedisStore
}

const (
	sessionPrefix = "scs:session:"
	linkPrefix    = "sessiongate:link:"
	userPrefix    = "sessiongate:user:"
)

// NewRedis returns a store that keeps sessions in the Redis behind pool.
func NewRedis(pool *redis.Pool) *Redis {
	return &Redis{pool: pool, scs: redisstore.NewWithPrefix(pool, sessionPrefix)}
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

// Find returns the data of the session at key.
func (r *Redis) Find(key string) ([]byte, bool, error) {
	b, found, err := r.scs.Find(key)
	if err != nil {
		return nil, false, unavailable(err)
	}
	return b, found, nil
}

// Commit updates the data and expiry of the session at key if it still
// exists (SET ... XX): a session ended meanwhile stays ended.
func (r *Redis) Commit(key string, data []byte, expires time.Time) error {
	ttl := r.ttl(expires)
	if ttl <= 0 {
		return r.Delete(key)
	}
	conn := r.pool.Get()
	defer conn.Close()
	if _, err := conn.Do("SET", sessionPrefix+key, data, "PX", ttl, "XX"); err != nil {
		return unavailable(err)
	}
	return nil
}

// Delete removes the session at key.
func (r *Redis) Delete(key string) error {
	if err := r.scs.Delete(key); err != nil {
		return unavailable(err)
	}
	return nil
}

// Mint writes the session, its index entry and its link in one MULTI.
func (r *Redis) Mint(ctx context.Context, m Mint) error {
	ttl := r.ttl(m.Expires)
	if ttl <= 0 {
		return nil
	}
	return r.transaction(ctx, func(conn redis.Conn) {
		conn.Send("SET", sessionPrefix+m.Key, m.Data, "PX", ttl)
		if m.User != "" {
			idx := userPrefix + m.User
			conn.Send("ZREMRANGEBYSCORE", idx, "-inf", time.Now().UnixMilli())
			conn.Send("ZADD", idx, m.Expires.UnixMilli(), m.Key)
			// NX sets an expiry on a new index; GT only ever extends it.
			conn.Send("PEXPIREAT", idx, m.Expires.UnixMilli(), "NX")
			conn.Send("PEXPIREAT", idx, m.Expires.UnixMilli(), "GT")
		}
		if m.LinkKey != "" {
			conn.Send("SET", linkPrefix+m.LinkKey, m.Link, "PX", ttl)
		}
	})
}

// Link returns the value of the link at key.
func (r *Redis) Link(ctx context.Context, key string) ([]byte, bool, error) {
	conn, err := r.pool.GetContext(ctx)
	if err != nil {
		return nil, false, unavailable(err)
	}
	defer conn.Close()
	b, err := redis.Bytes(redis.DoContext(conn, ctx, "GET", linkPrefix+key))
	if errors.Is(err, redis.ErrNil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, unavailable(err)
	}
	return b, true, nil
}

// End deletes sessions, their index entries, and tombstones their links,
// in one MULTI.
func (r *Redis) End(ctx context.Context, ends ...End) error {
	if len(ends) == 0 {
		return nil
	}
	return r.transaction(ctx, func(conn redis.Conn) {
		for _, e := range ends {
			conn.Send("DEL", sessionPrefix+e.Key)
			if e.User != "" {
				conn.Send("ZREM", userPrefix+e.User, e.Key)
			}
			if e.LinkKey == "" {
				continue
			}
			if ttl := r.ttl(e.TombstoneExpires); ttl > 0 {
				conn.Send("SET", linkPrefix+e.LinkKey, e.Tombstone, "PX", ttl)
			} else {
				conn.Send("DEL", linkPrefix+e.LinkKey)
			}
		}
	})
}

// Sessions returns user's live sessions: the index's live members, then
// their data in one MGET. Members whose session is gone are removed.
func (r *Redis) Sessions(ctx context.Context, user string) ([]Entry, error) {
	conn, err := r.pool.GetContext(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	defer conn.Close()
	idx := userPrefix + user
	keys, err := redis.Strings(redis.DoContext(conn, ctx, "ZRANGE", idx, time.Now().UnixMilli(), "+inf", "BYSCORE"))
	if err != nil {
		return nil, unavailable(err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = sessionPrefix + k
	}
	values, err := redis.ByteSlices(redis.DoContext(conn, ctx, "MGET", args...))
	if err != nil {
		return nil, unavailable(err)
	}
	entries := make([]Entry, 0, len(keys))
	var gone []any
	for i, v := range values {
		if v == nil {
			gone = append(gone, keys[i])
			continue
		}
		entries = append(entries, Entry{Key: keys[i], Data: v})
	}
	if len(gone) > 0 {
		// Best effort: a failure here leaves entries a later call drops.
		redis.DoContext(conn, ctx, "ZREM", append([]any{idx}, gone...)...)
	}
	return entries, nil
}

// Ping sends PING.
func (r *Redis) Ping(ctx context.Context) error {
	conn, err := r.pool.GetContext(ctx)
	if err != nil {
		return unavailable(err)
	}
	defer conn.Close()
	if _, err := redis.DoContext(conn, ctx, "PING"); err != nil {
		return unavailable(err)
	}
	return nil
}

// transaction sends the commands queued by fill in one MULTI/EXEC round
// trip.
func (r *Redis) transaction(ctx context.Context, fill func(redis.Conn)) error {
	conn, err := r.pool.GetContext(ctx)
	if err != nil {
		return unavailable(err)
	}
	defer conn.Close()
	conn.Send("MULTI")
	fill(conn)
	if _, err := redis.DoContext(conn, ctx, "EXEC"); err != nil {
		return unavailable(err)
	}
	return nil
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
