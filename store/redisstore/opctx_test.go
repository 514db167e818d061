package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An operation's context keeps context.Context's contract: Err is nil
// until it ends, then non-nil once Done is closed, for each way it ends
// (its caller's cancellation, its deadline, the operation's end), and a
// context derived from it ends with it.
func TestOpCtxContract(t *testing.T) {
	t.Parallel()
	t.Run("caller cancels", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		oc := newOpCtx(parent, time.Hour)
		defer oc.end()
		child, stop := context.WithTimeout(oc, time.Hour)
		defer stop()
		require.NoError(t, oc.Err())
		cancel()
		<-oc.Done()
		<-child.Done()
		assert.ErrorIs(t, oc.Err(), context.Canceled)
		assert.ErrorIs(t, child.Err(), context.Canceled)
		_, err := oc.left()
		assert.ErrorIs(t, err, context.Canceled)
	})
	t.Run("deadline", func(t *testing.T) {
		oc := newOpCtx(context.Background(), 10*time.Millisecond)
		defer oc.end()
		<-oc.Done()
		assert.ErrorIs(t, oc.Err(), context.DeadlineExceeded)
		_, err := oc.left()
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("deadline, never waited on", func(t *testing.T) {
		oc := newOpCtx(context.Background(), time.Nanosecond)
		defer oc.end()
		for oc.Err() == nil {
		}
		assert.ErrorIs(t, oc.Err(), context.DeadlineExceeded)
	})
	t.Run("the caller's earlier deadline", func(t *testing.T) {
		parent, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		oc := newOpCtx(parent, time.Hour)
		defer oc.end()
		want, _ := parent.Deadline()
		got, ok := oc.Deadline()
		assert.True(t, ok)
		assert.Equal(t, want, got)
	})
	t.Run("the operation ends", func(t *testing.T) {
		for _, waited := range []bool{false, true} {
			oc := newOpCtx(context.Background(), time.Hour)
			var child context.Context
			if waited {
				var stop context.CancelFunc
				child, stop = context.WithCancel(oc) // waits on oc.Done
				defer stop()
			}
			require.NoError(t, oc.Err())
			oc.end()
			<-oc.Done()
			assert.ErrorIs(t, oc.Err(), context.Canceled, "waited on: %v", waited)
			if child != nil {
				<-child.Done()
				assert.ErrorIs(t, child.Err(), context.Canceled)
			}
		}
	})
	t.Run("values", func(t *testing.T) {
		type key struct{}
		oc := newOpCtx(context.WithValue(context.Background(), key{}, "v"), time.Hour)
		defer oc.end()
		assert.Equal(t, "v", oc.Value(key{}))
	})
}

// A turn is taken at once while one is free, and waited for only until
// the context ends.
func TestTurns(t *testing.T) {
	t.Parallel()
	tr := make(turns, 1)
	oc := newOpCtx(context.Background(), time.Hour)
	defer oc.end()
	require.NoError(t, tr.take(oc))
	parent, cancel := context.WithCancel(context.Background())
	waiting := newOpCtx(parent, time.Hour)
	defer waiting.end()
	cancel()
	assert.ErrorIs(t, tr.take(waiting), context.Canceled)
	tr.give()
	require.NoError(t, tr.take(newOpCtx(context.Background(), time.Hour)))
	var none turns
	require.NoError(t, none.take(oc), "no turns: the pool waits")
	none.give()
}
