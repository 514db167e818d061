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
}

const (
	sessionPrefix = "sg:s:"
	userPrefix    = "sg:u:"
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

// Find returns the data of token's session if token's validator opens
// it: one GET.
func (r *Redis) Find(token string) ([]byte, bool, error) {
	return r.FindCtx(context.Background(), token)
}

// FindCtx is Find; a context from Prefetched answers without a read.
func (r *Redis) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	sel, val, ok := split(token)
	if !ok {
		return nil, false, nil
	}
	key := keyBytes(sel)
	raw, ok := prefetchedRaw(ctx, key[:])
	if !ok {
		var err error
		if raw, ok, err = r.scs.Find(string(key[:])); err != nil {
			return nil, false, unavailable(err)
		} else if !ok {
			return nil, false, nil
		}
	}
	data, ok := open(raw, val)
	return data, ok, nil
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
	conn := r.pool.Get()
	defer conn.Close()
	if _, err := commitScript.Do(conn, sessionPrefix+KeyOf(sel), v[:], data, ttl); err != nil {
		return unavailable(err)
	}
	return nil
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
	conn := r.pool.Get()
	defer conn.Close()
	if _, err := deleteScript.Do(conn, sessionPrefix+KeyOf(sel), v[:]); err != nil {
		return unavailable(err)
	}
	return nil
}

// Lookup returns what is stored at key: one GET.
func (r *Redis) Lookup(ctx context.Context, key string) (Stored, error) {
	conn, err := r.pool.GetContext(ctx)
	if err != nil {
		return Stored{}, unavailable(err)
	}
	defer conn.Close()
	raw, err := redis.Bytes(redis.DoContext(conn, ctx, "GET", sessionPrefix+key))
	if errors.Is(err, redis.ErrNil) {
		return Stored{}, nil
	}
	if err != nil {
		return Stored{}, unavailable(err)
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
	conn, err := r.pool.GetContext(ctx)
	if err != nil {
		return unavailable(err)
	}
	defer conn.Close()
	done, err := redis.Int(mintScript.DoContext(ctx, conn, sessionPrefix+key, userPrefix+m.User,
		frame(val, m.Nonce, m.Data), ttl, m.Expires.UnixMilli(), time.Now().UnixMilli(), m.Replace.raw, key))
	if err != nil {
		return unavailable(err)
	}
	if done != 1 {
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
		s := stored(v)
		if !s.Live() {
			gone = append(gone, keys[i])
			continue
		}
		entries = append(entries, Entry{Key: keys[i], Data: s.Data})
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
