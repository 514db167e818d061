package guesslimit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// limited returns a Limiter with a burst of 2 in which each of ips is
// limited. Once the test is over, no validation may hold or wait for a
// turn.
func limited(t *testing.T, clock *fakeClock, ips ...string) *Limiter {
	t.Helper()
	l := New(2, interval, clock.Now)
	for _, ip := range ips {
		l.Failed(ip, 3)
		require.Positive(t, l.Wait(ip))
	}
	t.Cleanup(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for k, c := range l.clients {
			assert.Zero(t, c.waiting, "client %s", k)
		}
	})
	return l
}

// eventually waits until cond holds: the goroutines under test have
// reached a state. It asserts no duration.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 30*time.Second, time.Millisecond, msg)
}

// wait calls Turn(ctx) for the client at ip in a goroutine, and once it
// waits for its turn, returns what Turn will return.
func wait(t *testing.T, l *Limiter, ctx context.Context, ip string) <-chan error {
	t.Helper()
	before := l.Waiting(ip)
	done := make(chan error, 1)
	go func() {
		release, err := Turn(ctx)
		if err == nil {
			release()
		}
		done <- err
	}()
	eventually(t, func() bool { return l.Waiting(ip) == before+1 }, "the validation waits for its turn")
	return done
}

// A limited client's validations take turns: one at a time, each
// waiter in turn, and none is refused. Other clients are not queued
// behind it.
func TestALimitedClientsValidationsTakeTurns(t *testing.T) {
	t.Parallel()
	const nat, other = "192.0.2.1", "192.0.2.9"
	l := limited(t, newClock(), nat, other)
	ctx := l.Queued(context.Background(), nat)

	release, err := Turn(ctx)
	require.NoError(t, err)
	const waiters = 4
	var holding, most, served atomic.Int64
	var wg sync.WaitGroup
	releases := make(chan func())
	for range waiters {
		wg.Go(func() {
			release, err := Turn(ctx)
			if !assert.NoError(t, err) {
				return
			}
			n := holding.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			served.Add(1)
			releases <- func() { holding.Add(-1); release() }
		})
	}
	eventually(t, func() bool { return l.Waiting(nat) == waiters+1 }, "every validation holds or waits for the client's turn")

	// Another limited client takes its own turn beside them; an untracked
	// one does not queue.
	releaseOther, err := Turn(l.Queued(context.Background(), other))
	require.NoError(t, err)
	assert.Equal(t, 1, l.Waiting(other))
	releaseOther()
	releaseUntracked, err := Turn(l.Queued(context.Background(), "198.51.100.1"))
	require.NoError(t, err)
	releaseUntracked()
	assert.Zero(t, served.Load(), "the waiters still wait")

	release()
	for range waiters {
		r := <-releases
		assert.EqualValues(t, 1, holding.Load())
		r()
	}
	wg.Wait()
	assert.EqualValues(t, waiters, served.Load(), "none refused")
	assert.EqualValues(t, 1, most.Load(), "never two of the client's validations at once")
	assert.Zero(t, l.Waiting(nat))
}

// A queued request whose client leaves gives up its place, even from a
// validation detached from its cancellation.
func TestAQueuedRequestThatLeavesGivesUpItsPlace(t *testing.T) {
	t.Parallel()
	const nat = "192.0.2.2"
	l := limited(t, newClock(), nat)
	release, err := Turn(l.Queued(context.Background(), nat))
	require.NoError(t, err)

	request, leave := context.WithCancel(context.Background())
	gaveUp := wait(t, l, context.WithoutCancel(l.Queued(request, nat)), nat)
	leave()
	assert.ErrorIs(t, <-gaveUp, ErrNoTurn)
	assert.Equal(t, 1, l.Waiting(nat), "the detached validation left the queue with its client")
	release()
	assert.Zero(t, l.Waiting(nat))
}

// A turn that does not come before Turn's context ends is ErrNoTurn (the
// middleware bounds it with ExchangeTimeout and answers 429).
func TestATurnThatDoesNotComeIsErrNoTurn(t *testing.T) {
	t.Parallel()
	const nat = "192.0.2.3"
	l := limited(t, newClock(), nat)
	queued := l.Queued(context.Background(), nat)
	release, err := Turn(queued)
	require.NoError(t, err)

	ctx, timeout := context.WithCancel(queued)
	gaveUp := wait(t, l, ctx, nat)
	timeout()
	assert.ErrorIs(t, <-gaveUp, ErrNoTurn)
	release()
}

// Only a queued context of a client still tracked waits for a turn.
func TestTurnReturnsAtOnceWhenNotQueued(t *testing.T) {
	t.Parallel()
	clock := newClock()
	const nat = "192.0.2.4"
	l := limited(t, clock, nat)
	for name, ctx := range map[string]context.Context{
		"not queued":          context.Background(),
		"queued by nil":       (*Limiter)(nil).Queued(context.Background(), nat),
		"queued, not tracked": l.Queued(context.Background(), "192.0.2.5"),
	} {
		t.Run(name, func(t *testing.T) {
			release, err := Turn(ctx)
			require.NoError(t, err)
			release()
			release() // a no-op
		})
	}

	queued := l.Queued(context.Background(), nat)
	clock.Advance(10 * interval)
	l.Failed("192.0.2.6", 1) // sweeps nat, forgiven
	require.NotContains(t, l.Clients(), nat)
	hold, err := Turn(queued)
	require.NoError(t, err)
	again, err := Turn(queued)
	require.NoError(t, err, "a client forgiven meanwhile is not queued")
	again()
	hold()
}

// A client is not forgotten while a validation of its holds or waits for
// its turn, even once its bucket is full.
func TestAClientInTheQueueIsNotSwept(t *testing.T) {
	t.Parallel()
	clock := newClock()
	const nat = "192.0.2.7"
	l := limited(t, clock, nat)
	release, err := Turn(l.Queued(context.Background(), nat))
	require.NoError(t, err)

	clock.Advance(10 * interval)
	l.Failed("192.0.2.8", 1)
	assert.Contains(t, l.Clients(), "192.0.2.7", "held")
	release()

	clock.Advance(10 * interval)
	l.Failed("192.0.2.9", 1) // a newcomer sweeps
	assert.NotContains(t, l.Clients(), "192.0.2.7")
}
