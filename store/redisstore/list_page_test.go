package redisstore

import (
	"cmp"
	"context"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/backend/backendtest"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// countingDial returns a dial option whose connections count the bytes
// they exchange with Redis (commands sent, replies read) in n: the
// store's work as Redis sees it.
func countingDial(n *atomic.Int64) redis.DialOption {
	return redis.DialContextFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return byteCountingConn{c, n}, nil
	})
}

type byteCountingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c byteCountingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func (c byteCountingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// A page of a user's sessions on one Redis exchanges the same bytes for a
// user with 10 sessions as for one with 10,000: its script reads the
// page's entries only, its MGET the page's sessions.
func TestRedisListPageCost(t *testing.T) {
	t.Parallel()
	st, n := countingStore(t)
	backendtest.ListCost(t, st, 10_000, n.Load)
}

// So does a page of a user whose sessions all expire in the same
// millisecond, 10 or 2,000 of them: the page's place is a rank in the
// index, found by one script, not a read of every entry of that expiry;
// and after the entry its cursor names has ended too.
func TestRedisTiedListPageCost(t *testing.T) {
	t.Parallel()
	st, n := countingStore(t)
	backendtest.TiedListCost(t, st, 2_000, n.Load)
}

// countingStore returns a store on a new Redis whose connections count,
// in n, the bytes they exchange with it.
func countingStore(t *testing.T) (store.Store, *atomic.Int64) {
	srv := storetest.Start(t)
	n := new(atomic.Int64)
	pool := &redis.Pool{MaxIdle: 8, DialContext: func(ctx context.Context) (redis.Conn, error) {
		return redis.DialURLContext(ctx, srv.URL, countingDial(n))
	}}
	t.Cleanup(func() { pool.Close() })
	return New(pool, Options{}), n
}

// The same on a Cluster, with one pipeline per node for the page's
// sessions.
func testClusterListPageCost(t *testing.T, c *storetest.Cluster) {
	var n atomic.Int64
	st, err := startCluster(c.Addrs(), []redis.DialOption{
		redis.DialConnectTimeout(2 * time.Second), redis.DialReadTimeout(30 * time.Second), redis.DialWriteTimeout(30 * time.Second),
		countingDial(&n),
	}, Options{})
	require.NoError(t, err)
	st.prefix = "t" + strconv.FormatInt(clusterStores.Add(1), 10) + ":"
	t.Cleanup(st.close)
	backendtest.ListCost(t, st, 2_000, n.Load)
	backendtest.TiedListCost(t, st, 2_000, n.Load)
}

// pageScript places a position as backend.Position.After does, whether
// its member is in the index with its score, with another score, or not
// at all, and orders members byte by byte as Redis does ("B" < "a",
// "\xff" last, a prefix first; Lua's own comparison would follow the
// server's locale, which agrees only in C, the only one here): checked
// against a model on random indexes of few expiries, so that positions
// fall among ties, at their edges and between them.
func TestPageScriptPlacesPositions(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	rng := rand.New(rand.NewPCG(1, 2))
	const now = 1_000_000
	alphabet := []byte{0, 'B', 'a', 'b', '~', 0x7f, 0x80, 0xff}
	member := func() string {
		b := make([]byte, 1+rng.IntN(3))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	scores := []int64{now - 5, now, now + 1000, now + 2000, now + 3000}
	for round := range 20 {
		idx := "sg:u:model" + strconv.Itoa(round)
		index := map[string]int64{}
		for range 1 + rng.IntN(40) {
			m, s := member(), scores[rng.IntN(len(scores))]
			index[m] = s
			_, err := srv.Do("ZADD", idx, s, m)
			require.NoError(t, err)
		}
		var live []backend.IndexEntry
		for m, s := range index {
			if s > now {
				live = append(live, backend.IndexEntry{Key: m, Expires: s})
			}
		}
		slices.SortFunc(live, func(a, b backend.IndexEntry) int {
			if a.Expires != b.Expires {
				return cmp.Compare(b.Expires, a.Expires)
			}
			return strings.Compare(b.Key, a.Key)
		})
		positions := []backend.Position{{}}
		for m, s := range index {
			positions = append(positions, backend.Position{Expires: s, Key: m})
			positions = append(positions, backend.Position{Expires: scores[rng.IntN(len(scores))], Key: m})
		}
		for range 20 {
			positions = append(positions, backend.Position{Expires: scores[rng.IntN(len(scores))], Key: member()})
		}
		for _, p := range positions {
			for _, limit := range []int{1, 2, 3, 5} {
				var want []backend.IndexEntry
				for _, e := range live {
					if p.After(e.Expires, e.Key) && len(want) < limit+1 {
						want = append(want, e)
					}
				}
				args := pageArgs(p, limit)
				args[2] = now
				got, err := indexEntries(redis.Strings(srv.Do("EVAL", append([]any{pageLua, 1, idx}, args...)...)))
				require.NoError(t, err)
				if len(want) == 0 {
					want = []backend.IndexEntry{}
				}
				require.Equal(t, want, got, "round %d, after %q at %d, limit %d", round, p.Key, p.Expires, limit)
			}
		}
	}
}
