package middleware_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/store"
)

// BenchmarkListSessions lists one user's three sessions with 100 and with
// 100,000 other users' sessions in Redis: the cost must not grow with the
// store, because listing reads the user's index, never the keyspace.
func BenchmarkListSessions(b *testing.B) {
	for _, others := range []int{100, 100_000} {
		b.Run(fmt.Sprintf("others=%d", others), func(b *testing.B) {
			e := newEnv(b, "redis")
			for range 3 {
				e.signIn("listed")
			}
			fillOtherUsers(b, e, others)
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				list, err := e.auth.Sessions(ctx, "plurality", "listed")
				if err != nil || len(list) != 3 {
					b.Fatalf("got %d sessions, %v", len(list), err)
				}
			}
		})
	}
}

// fillOtherUsers writes n sessions of n other users straight into Redis,
// shaped like minted ones, pipelined.
func fillOtherUsers(b *testing.B, e *env, n int) {
	b.Helper()
	conn, err := redis.DialURL(e.redis.URL)
	require.NoError(b, err)
	defer conn.Close()
	exp := time.Now().Add(time.Hour)
	data, err := e.sm.Codec.Encode(exp, map[string]any{"sessiongate": []byte(`{"id":"x","u":"other","p":"plurality","cr":0,"ls":0,"ex":9999999999999}`)})
	require.NoError(b, err)
	for i := range n {
		key := store.Key(fmt.Sprintf("other-%d", i))
		conn.Send("SET", "scs:session:"+key, data, "PX", time.Hour.Milliseconds())
		conn.Send("ZADD", fmt.Sprintf("sessiongate:user:plurality:other-%d", i), exp.UnixMilli(), key)
		if i%1000 == 999 {
			require.NoError(b, conn.Flush())
			for range 2000 {
				_, err := conn.Receive()
				require.NoError(b, err)
			}
		}
	}
	require.NoError(b, conn.Flush())
	for range 2 * (n % 1000) {
		_, err := conn.Receive()
		require.NoError(b, err)
	}
	size, err := redis.Int(conn.Do("DBSIZE"))
	require.NoError(b, err)
	require.GreaterOrEqual(b, size, 2*n)
}
