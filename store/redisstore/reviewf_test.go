package redisstore

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// Review F: a Cluster store Open returned, closed, must refuse every
// operation ("the store is closed"), as a single one does. close()
// deletes the node pools from the map, so the next operation's
// c.pool(addr) makes a fresh pool, dials the node and succeeds.
func TestReviewFClusterOperationAfterClose(t *testing.T) {
	t.Parallel()
	c := storetest.StartCluster(t)
	addrs := c.Addrs()
	url := "redis://" + addrs[0] + "?cluster=true"
	for _, a := range addrs[1:] {
		url += "&addr=" + a
	}
	st, err := Open(url, Options{Timeout: time.Minute})
	require.NoError(t, err)
	ctx := context.Background()
	_, err = st.Lookup(ctx, "rvf-close")
	require.NoError(t, err, "before Close")
	require.NoError(t, st.(io.Closer).Close())

	_, err = st.Lookup(ctx, "rvf-close")
	t.Logf("Lookup after Close: %v", err)
	require.Error(t, err, "an operation after Close")
	assert.ErrorIs(t, err, store.ErrUnavailable)
	assert.Contains(t, err.Error(), "the store is closed")
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "refused at once, not retried until the deadline")

	_, _, err = st.List(ctx, "rvf-user", backend.Position{}, 10)
	t.Logf("List after Close: %v", err)
	assert.Error(t, err, "a List after Close")
}
