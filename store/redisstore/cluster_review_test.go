package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend/backendtest"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// Attacks on the Cluster protocol, kept from a review.
func TestClusterReviewAttacks(t *testing.T) {
	t.Parallel()
	c := storetest.StartCluster(t)
	ctx := context.Background()

	// A device signs out while one of its tabs continues its session
	// (steps 1 and 2 done). The replica of the signed-out key's node
	// stalls for the sign-out: End answers 503, but its SET of the ended
	// mark ran on the primary. The client's retry of DELETE /session then
	// meets an ended session (RequireSession: 401), so neither End's
	// continuation fence nor the engine's heir search ever runs again.
	t.Run("SignOutUnacknowledgedThenContinuation", func(t *testing.T) {
		st := newClusterTestStore(t, c, Options{})
		cc := newContinuationCase(t, c, st, "rv17b")
		oldNode := c.Owner(st.sessionKey(cc.oldKey))
		replica := c.ReplicaOf(oldNode)
		require.NotNil(t, replica)

		_, err := st.mintIndex(ctx, cc.cont)
		require.NoError(t, err)
		require.NoError(t, st.mintContinue(ctx, cc.cont))

		resume := replica.Stall()
		endErr := st.End(ctx, cc.end)
		resume()
		t.Logf("End with the old key's replica stalled: %v", endErr)
		old, err := st.Lookup(ctx, cc.oldKey)
		require.NoError(t, err)
		t.Logf("old key after the failed End: found=%v ended=%v live=%v (ended: the client's retry gets 401)", old.Found(), old.Ended, old.Live())

		// The tab's mint goes on: steps 3 and 4.
		writeErr := st.mintWrite(ctx, cc.cont)
		finishErr := st.mintFinish(ctx, cc.cont, nil)
		got, err := st.Lookup(ctx, cc.newKey)
		require.NoError(t, err)
		t.Logf("continuation: step 3 %v, step 4 %v; its key live=%v", writeErr, finishErr, got.Live())

		// A store-level retry of the same End (what the HTTP retry never
		// does): the continuation record is gone, nothing fences.
		retryErr := st.End(ctx, cc.end)
		got2, _ := st.Lookup(ctx, cc.newKey)
		listed, _ := backendtest.ListAll(ctx, st, cc.user)
		t.Logf("End retried: %v; continuation live=%v; listed %v", retryErr, got2.Live(), entryKeys(listed))

		require.Error(t, endErr, "the stalled replica acknowledged nothing: the end is not durable")
		require.True(t, old.Ended, "the mark landed on the primary")
		assert.Error(t, writeErr, "the continuation's write is fenced")
		assert.False(t, got.Live(), "the signed-out device came back: End failed after its mark landed (so a retry sees an ended session), "+
			"and skipped the continuation fence, and the continuation went live")
		assert.False(t, got2.Live())
		assert.Empty(t, listed)
	})
}

// Review T: an operation on a stalled Cluster that runs out of time says
// so as a single store's does: ErrUnavailable and DeadlineExceeded (the
// socket's read timeout, set to the operation's deadline, fires first;
// it was a plain "timeout" that matched neither context error), whether
// the deadline is the store's Timeout or the caller's.
func TestClusterTimeoutIsDeadlineExceeded(t *testing.T) {
	t.Parallel()
	c := storetest.StartCluster(t)
	st := newClusterTestStore(t, c, Options{Timeout: 300 * time.Millisecond})
	ctx := context.Background()
	_, err := st.Lookup(ctx, "warm")
	require.NoError(t, err)
	for _, n := range c.Nodes {
		defer n.Stall()()
	}
	_, err = st.Lookup(ctx, "warm")
	require.Error(t, err)
	assert.ErrorIs(t, err, store.ErrUnavailable)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "the store's Timeout: %v", err)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = st.Lookup(short, "warm")
	require.Error(t, err)
	assert.ErrorIs(t, err, store.ErrUnavailable)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "the caller's deadline: %v", err)
}
