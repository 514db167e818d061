package redisstore

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// Review H: a Cluster store closed while an operation is reading the
// layout (its seed answers slowly, then hangs up): the operation, once
// redisc's Refresh fails, goes on to whyNoLayout, which dials every seed
// again after Close (readLayout checks isClosed only on entry), and
// answers the seed's reason rather than "the store is closed".
func TestReviewHClusterClosedDuringLayoutReadDials(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int64
	held := make(chan struct{}, 16)
	var gate atomic.Pointer[chan struct{}]
	setGate := func() chan struct{} { ch := make(chan struct{}); gate.Store(&ch); return ch }
	release := setGate()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			release := *gate.Load()
			go func() {
				select {
				case held <- struct{}{}:
				default:
				}
				<-release // a seed that answers nothing until released, then hangs up
				c.Close()
			}()
		}
	}()
	close(release) // Open: the seed hangs up at once
	st, err := Open("redis://"+ln.Addr().String()+"?cluster=true", Options{Timeout: 5 * time.Second})
	require.NotNil(t, st, "Open returns the store with the reason: %v", err)
	t.Logf("Open: %v", err)
	// From now on the seed holds each connection until released again.
	release = setGate()
	for len(held) > 0 {
		<-held
	}
	errc := make(chan error, 1)
	go func() { errc <- st.Check(context.Background(), make([]byte, 32), false) }()
	select {
	case <-held: // the Check's layout read is on the seed
	case <-time.After(10 * time.Second):
		t.Fatal("the Check never reached the seed")
	}
	require.NoError(t, st.(io.Closer).Close())
	before := accepted.Load()
	close(release) // the seed hangs up: Refresh fails
	err = <-errc
	time.Sleep(200 * time.Millisecond) // let a stray dial land (not a timing assertion: a count)
	t.Logf("the Check in flight at Close: %v; dials after Close: %d", err, accepted.Load()-before)
	assert.Zero(t, accepted.Load()-before, "nothing is dialled after Close")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the store is closed")
}

// Review H (held): on Sentinel, a sign-out whose commands Redis refuses
// to queue for a final reason (OOM: maxmemory reached, noeviction) is an
// error carrying that reason, not done and not retried until the deadline,
// and writes nothing; once memory is back, the same End succeeds and is
// on the replicas.
func TestReviewHSentinelEndRefusedOOM(t *testing.T) {
	t.Parallel()
	set := storetest.StartSentinel(t, storetest.SentinelConfig{})
	primary := set.Node(set.Primary())
	st, err := Open(set.URL(), Options{Timeout: 10 * time.Second, NearCache: &NearCache{Strict: true}})
	require.NoError(t, err)
	t.Cleanup(func() { st.(io.Closer).Close() })
	ctx := context.Background()
	require.NoError(t, st.Check(ctx, make([]byte, 32), true))
	_, err = primary.Do("CONFIG", "SET", "maxmemory-policy", "noeviction")
	require.NoError(t, err)
	_, err = primary.Do("CONFIG", "SET", "maxmemory", "1")
	require.NoError(t, err)
	waits := commandCalls(t, primary, "wait")
	end := backend.Ending{Key: "rvh-oom", User: "rvh-u", Until: time.Now().Add(time.Hour), Mark: "rvh-oom-m"}
	err = st.End(ctx, end)
	t.Logf("End at maxmemory: %v (WAITs %d)", err, commandCalls(t, primary, "wait")-waits)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "OOM")
	n, _ := redis.Int(primary.Do("EXISTS", sessionPrefix+"rvh-oom", sessionPrefix+"rvh-oom-m"))
	assert.Zero(t, n, "nothing written")
	_, err = primary.Do("CONFIG", "SET", "maxmemory", "0")
	require.NoError(t, err)
	require.NoError(t, st.End(ctx, end))
	for _, node := range set.Nodes {
		v, _ := redis.String(node.Do("GET", sessionPrefix+"rvh-oom-m"))
		assert.NotEmpty(t, v, "the mark is on %s", node.Addr)
	}
}
