package redisstore

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
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
	tr := newTurns(1, time.Millisecond)
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
	var none *turns
	require.NoError(t, none.take(oc), "no turns: the pool waits")
	none.give()
}

// A waiter whose caller's context never ends (Background: no Done at all)
// still stops waiting at its operation's deadline, woken when its
// generation's tick ends; the alarm then stops, with no generation left;
// a turn given back goes to a waiter, not to the alarm.
func TestTurnsWaitEndsAtTheDeadline(t *testing.T) {
	t.Parallel()
	tr := busyTurns(t, time.Millisecond)

	const waiters = 8
	errs := make(chan error, waiters)
	for i := range waiters {
		go func() {
			oc := newOpCtx(context.Background(), time.Duration(10+5*i)*time.Millisecond)
			defer oc.end()
			errs <- tr.take(oc)
		}()
	}
	for range waiters {
		select {
		case err := <-errs:
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		case <-time.After(time.Minute):
			t.Fatal("a waiter was never woken after its deadline")
		}
	}
	require.Eventually(t, func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.gens) == 0 && tr.armedFor == 0
	}, time.Minute, time.Millisecond, "the alarm stops once no generation is left")

	// The turn still held is given to a waiter that comes later.
	got := make(chan error, 1)
	go func() {
		oc := newOpCtx(context.Background(), time.Hour)
		defer oc.end()
		got <- tr.take(oc)
	}()
	require.Eventually(t, func() bool { return pending(tr) == 1 }, time.Minute, time.Millisecond)
	tr.give()
	require.NoError(t, <-got)
	assert.Len(t, tr.ch, 1, "the waiter holds the turn")
}

// A waiter whose deadline is its caller's is woken by its caller's
// context, on time, with no alarm at all (its generation's tick is an
// hour); one whose caller cancels (no deadline of its own) ends, with the
// caller's error, by its operation's deadline.
func TestTurnsWaitEndsWithTheCaller(t *testing.T) {
	t.Parallel()
	hourly := busyTurns(t, time.Hour)
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	oc := newOpCtx(short, time.Hour)
	defer oc.end()
	assert.ErrorIs(t, hourly.take(oc), context.DeadlineExceeded)

	often := busyTurns(t, time.Millisecond)
	parent, cancelParent := context.WithCancel(context.Background())
	waiting := newOpCtx(parent, 30*time.Millisecond)
	defer waiting.end()
	got := make(chan error, 1)
	go func() { got <- often.take(waiting) }()
	require.Eventually(t, func() bool { return pending(often) == 1 }, time.Minute, time.Millisecond)
	cancelParent()
	assert.ErrorIs(t, <-got, context.Canceled)
	assert.Len(t, often.ch, 1, "the holder's turn only")
}

// Review T: waiters get their turns in the order they came, however many
// ticks pass while they wait (a shared alarm that woke every waiter at
// each tick made them queue again in the scheduler's order, so that the
// oldest, nearest their deadlines, timed out first under load).
func TestTurnsFIFOAcrossTicks(t *testing.T) {
	// Not parallel: it counts the goroutines waiting in take.
	tr := busyTurns(t, time.Millisecond)
	const n = 64
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Deadlines over many ticks, each in a generation of its own.
			oc := newOpCtx(context.Background(), time.Hour+time.Duration(i)*time.Millisecond)
			defer oc.end()
			if assert.NoError(t, tr.take(oc)) {
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				tr.give()
			}
		})
		// The next waiter comes once this one waits: the channel's queue.
		require.Eventually(t, func() bool { return waitingSenders(tr) == i+1 }, time.Minute, 100*time.Microsecond)
	}
	// Many 1 ms ticks passed while they queued, and none of their
	// generations (an hour away) was closed: the turn is given back.
	tr.give()
	wg.Wait()
	assert.Equal(t, n, len(order))
	for i := range order {
		assert.Equal(t, i, order[i], "turn %d went to waiter %d", i, order[i])
	}
}

// waitingSenders is how many goroutines are waiting in a turns' take,
// read from the goroutine dump: any turns', so that a test that counts
// them does not run in parallel with others of this package.
func waitingSenders(tr *turns) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "redisstore.(*turns).take(")
}

// Many operations contend for few turns while the alarm rings, starts and
// stops: none takes a turn beyond the bound, none is left waiting, and
// each that took one gives it back.
func TestTurnsUnderContention(t *testing.T) {
	t.Parallel()
	tr := newTurns(2, time.Millisecond)
	var held, most atomic.Int64
	var wg sync.WaitGroup
	var ok, late atomic.Int64
	for i := range 64 {
		wg.Go(func() {
			for j := range 50 {
				timeout := time.Hour
				if (i+j)%3 == 0 {
					timeout = time.Duration(j%4) * time.Millisecond
				}
				oc := newOpCtx(context.Background(), timeout)
				if err := tr.take(oc); err != nil {
					assert.ErrorIs(t, err, context.DeadlineExceeded)
					late.Add(1)
					oc.end()
					continue
				}
				n := held.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				runtime.Gosched()
				held.Add(-1)
				tr.give()
				ok.Add(1)
				oc.end()
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, most.Load(), int64(2))
	assert.Equal(t, int64(64*50), ok.Load()+late.Load())
	assert.Positive(t, ok.Load())
	assert.Empty(t, tr.ch)
}

// busyTurns returns turns of one, with generations of tick, whose one
// turn is held until t ends.
func busyTurns(t *testing.T, tick time.Duration) *turns {
	tr := newTurns(1, tick)
	holder := newOpCtx(context.Background(), time.Hour)
	t.Cleanup(holder.end)
	require.NoError(t, tr.take(holder))
	return tr
}

// pending is how many generations tr's alarm has yet to close.
func pending(tr *turns) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.gens)
}
