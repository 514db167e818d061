package redisstore

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// Review U: a waiter whose caller canceled while it waited, and that
// then gets the turn, borrows nothing. It did: the pool's borrow check
// PINGed under the canceled context (a connection had died meanwhile),
// failed, and closed a healthy idle connection, which the next operation
// dialled again.
func TestReviewUCanceledWaiterBorrowsNothing(t *testing.T) {
	// Not parallel: it counts the goroutines waiting in take.
	srv := storetest.Start(t)
	st, err := Open(srv.URL, Options{PoolSize: 1, Timeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { st.(io.Closer).Close() })
	r := st.(*openStore).redisStore
	ctx := context.Background()
	_, err = st.Lookup(ctx, "warm")
	require.NoError(t, err)
	before := connectionsReceived(t, srv)

	holder := newOpCtx(ctx, time.Hour)
	defer holder.end()
	require.NoError(t, r.turns.take(holder)) // every turn busy
	canceled, cancel := context.WithCancel(ctx)
	got := make(chan error, 1)
	go func() { _, err := st.Lookup(canceled, "waiting"); got <- err }()
	require.Eventually(t, func() bool { return waitingSenders(r.turns) == 1 }, time.Minute, time.Millisecond)
	r.droppedAt.Store(time.Now().UnixNano()) // some other connection died meanwhile
	cancel()
	r.turns.give() // the waiter's wait ends with a turn
	err = <-got
	assert.ErrorIs(t, err, store.ErrUnavailable)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, r.turns.ch, "the turn was given back")

	_, err = st.Lookup(ctx, "after")
	require.NoError(t, err)
	assert.Equal(t, before+1, connectionsReceived(t, srv), "no connection dialled (one more: INFO's own)")
}

// Review U: an operation whose caller cancels while its command waits on
// a frozen Redis ends with Canceled, what ended it, not DeadlineExceeded
// (the socket's read timeout, which carried the end to the command).
func TestReviewUCanceledWhileReadingSaysCanceled(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	p := startProxy(t, srv.Addr)
	st, err := Open("redis://"+p.ln.Addr().String(), Options{PoolSize: 1, Timeout: 300 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { st.(io.Closer).Close() })
	_, err = st.Lookup(context.Background(), "warm")
	require.NoError(t, err)
	p.freeze()
	defer p.thaw()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = st.Lookup(ctx, "k")
	require.Error(t, err)
	assert.ErrorIs(t, err, store.ErrUnavailable)
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
}

// Review U: a Cluster's Check on stalled nodes wraps DeadlineExceeded,
// as a single store's does.
func TestReviewUClusterCheckStalled(t *testing.T) {
	t.Parallel()
	c := storetest.StartCluster(t)
	st := newClusterTestStore(t, c, Options{Timeout: 300 * time.Millisecond})
	_, err := st.Lookup(context.Background(), "warm")
	require.NoError(t, err)
	for _, n := range c.Nodes {
		defer n.Stall()()
	}
	err = st.Check(context.Background(), []byte("fp"), false)
	require.Error(t, err)
	assert.ErrorIs(t, err, store.ErrUnavailable)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}
