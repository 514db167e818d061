package redisstore

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend/backendtest"
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
// user with 10 sessions as for one with 10,000: its ZRANGE reads the
// page's entries only, its MGET the page's sessions.
func TestRedisListPageCost(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	var n atomic.Int64
	pool := &redis.Pool{MaxIdle: 8, DialContext: func(ctx context.Context) (redis.Conn, error) {
		return redis.DialURLContext(ctx, srv.URL, countingDial(&n))
	}}
	t.Cleanup(func() { pool.Close() })
	st := New(pool, Options{})
	backendtest.ListCost(t, st, 10_000, n.Load)
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
}
