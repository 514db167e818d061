package redisstore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// opCtx is the context an operation of the store runs in: the caller's,
// with the operation's deadline (Options.Timeout from its start, or the
// caller's deadline when that is earlier). Unlike context.WithTimeout it
// costs one allocation and no timer until something waits on Done (a
// dial, a pool that waits for a connection, a guard's pause): the
// commands themselves take the deadline as their read timeout (see do),
// so that a steady read needs neither.
//
// Its Err is the caller's error, else context.DeadlineExceeded once the
// deadline has passed; Done closes at the first of those two.
type opCtx struct {
	context.Context // the caller's: its values and its cancellation

	deadline time.Time

	// timed is set once: by the first Done (the caller's context with
	// the deadline), or, before any Done, by Err or left finding the
	// operation over, or by end (one of the sentinels endedCtx,
	// deadlineEnded, callerEnded, which say how it ended); nil before.
	timed atomic.Pointer[timedCtx]

	// err is the first error Err returned: the one it returns from then
	// on, as context.Context requires.
	err atomic.Pointer[error]

	// conn is the connection of the operation's attempt under way (a
	// single server's: see redisStore.attempt), kept here so that it
	// costs no allocation of its own.
	conn opConn
}

// newOpCtx returns the context of an operation that starts now under
// ctx, bounded by timeout.
func newOpCtx(ctx context.Context, timeout time.Duration) *opCtx {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return &opCtx{Context: ctx, deadline: deadline}
}

// ended is the context of an operation that is over: canceled.
var ended = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

func (c *opCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// Value is the caller's context's, so that context.Cause answers as it
// would for context.WithDeadline's: once Done made its context, through
// it; once the operation ended by its deadline or its end before any Done
// (Err then says which), Cause is Err; before either, and when the
// caller's context ended it, Cause is the caller's.
func (c *opCtx) Value(key any) any {
	if t := c.timed.Load(); t != nil {
		if t.cancel != nil {
			return t.ctx.Value(key)
		}
		if t == endedCtx || t == deadlineEnded {
			// A cancelCtx never canceled, without a cause: Cause falls
			// back on Err. Every other key is the caller's.
			if v := uncaused.Value(key); v != nil {
				return v
			}
		}
	}
	return c.Context.Value(key)
}

// uncaused is a context canceled never: see Value.
var uncaused, _ = context.WithCancel(context.Background())

func (c *opCtx) Done() <-chan struct{} {
	if t := c.timed.Load(); t != nil {
		return t.ctx.Done()
	}
	ctx, cancel := context.WithDeadline(c.Context, c.deadline)
	t := &timedCtx{ctx: ctx, cancel: cancel}
	if !c.timed.CompareAndSwap(nil, t) {
		cancel() // another Done, or end, came first
		t = c.timed.Load()
	}
	return t.ctx.Done()
}

func (c *opCtx) Err() error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	if t := c.timed.Load(); t != nil {
		return c.settle(c.errOf(t))
	}
	if err := c.Context.Err(); err != nil {
		return c.over(err, callerEnded)
	}
	if !time.Now().Before(c.deadline) {
		return c.over(context.DeadlineExceeded, deadlineEnded)
	}
	return nil
}

// errOf is the error of the operation once t is its timedCtx.
func (c *opCtx) errOf(t *timedCtx) error {
	if t == callerEnded {
		return c.Context.Err()
	}
	return t.ctx.Err()
}

// over is Err for an operation found over (err) before anything waited on
// its Done: Done is closed first (no timer), as context.Context requires
// of a non-nil Err, unless a Done came first, whose context then answers.
func (c *opCtx) over(err error, by *timedCtx) error {
	if !c.timed.CompareAndSwap(nil, by) {
		return c.settle(c.errOf(c.timed.Load()))
	}
	return c.settle(err)
}

// settle returns err (nil: nil), or the error Err returned first, which
// it keeps returning.
func (c *opCtx) settle(err error) error {
	if err == nil {
		return nil
	}
	c.err.CompareAndSwap(nil, &err)
	return *c.err.Load()
}

// left is the time before the deadline, and Err when none is left, with
// one reading of the clock. An error it returns is the one Err returns
// from then on: when a Done's timer is due but has not fired yet, or the
// caller's context has ended but its Done's context has not followed
// yet, it waits for that (at once) rather than answer what Err does not.
func (c *opCtx) left() (time.Duration, error) {
	if p := c.err.Load(); p != nil {
		return 0, *p
	}
	err := c.Context.Err()
	by := callerEnded
	d := time.Until(c.deadline)
	if err == nil && d <= 0 {
		err, by = context.DeadlineExceeded, deadlineEnded
	}
	t := c.timed.Load()
	if err == nil {
		if t != nil {
			if err := c.errOf(t); err != nil { // end, or another reader, came first
				return 0, c.settle(err)
			}
		}
		return d, nil
	}
	if t == nil {
		if c.timed.CompareAndSwap(nil, by) {
			return 0, c.settle(err)
		}
		t = c.timed.Load() // a Done came first
	}
	<-t.ctx.Done()
	return 0, c.settle(c.errOf(t))
}

// end ends the operation: its context is over from then on (Done
// closed; Err the error Err already returned, else context.Canceled), and
// what Done made is released. Call it once the operation is over.
func (c *opCtx) end() {
	by := endedCtx
	if c.Context.Err() != nil {
		by = callerEnded
	}
	if c.timed.CompareAndSwap(nil, by) {
		return
	}
	if t := c.timed.Load(); t.cancel != nil {
		t.cancel()
	}
}

// timedCtx is an operation's context with its deadline, made by Done.
type timedCtx struct {
	ctx    context.Context
	cancel context.CancelFunc // nil for the sentinels
}

// endedCtx is the timedCtx of an operation that ended, by its deadline
// or its end, before anything waited on its Done; callerEnded of one
// whose caller's context ended it.
var (
	endedCtx    = &timedCtx{ctx: ended}
	callerEnded = &timedCtx{ctx: ended}
)

// deadlineEnded is the timedCtx of an operation found over by its
// deadline before anything waited on its Done (Err: DeadlineExceeded).
var deadlineEnded = &timedCtx{ctx: func() context.Context {
	ctx, cancel := context.WithDeadline(context.Background(), time.Time{})
	cancel()
	return ctx
}()}

// turns bounds the operations under way on a pool the store made itself
// (Open's), in place of the pool's own wait (its Wait is off): an
// operation takes a turn before it borrows a connection and gives it back
// after it returned it, so that at most the pool's MaxActive connections
// are ever borrowed at once, and a borrow never finds the pool exhausted.
// Waiters get their turns in the order they came (a channel's senders'
// order). A nil *turns (a pool the caller made, which others may share)
// lets the pool wait as it is configured to.
//
// Waiting costs no timer of its own. The pool's own wait, or a wait on
// the operation's Done, makes one per borrow (context.WithDeadline's),
// and when every connection is busy (more concurrent requests than
// PoolSize) nearly every borrow waits: that timer, and a Done channel
// for the caller's context, were the largest extra cost of a steady read
// at 256 clients. Instead, waiters whose deadlines fall in the same tick
// (see tickOf) share a generation, whose channel one alarm closes when
// the tick is over: a waiter wakes at its turn, at its caller's deadline
// when that is the operation's (its caller's context ends it on time),
// or at the end of its deadline's tick, at most one tick late. A waiter
// is never woken before its end, so that it keeps its place in the
// queue. A caller's cancellation (a client gone, no deadline of its own)
// is seen when the waiter wakes: it then borrows nothing.
type turns struct {
	ch   chan struct{}
	tick time.Duration
	base time.Time // generation n ends at base + n*tick

	// last is the generation a waiter joined last: the next one, whose
	// deadline is most likely in the same tick, finds it without the lock.
	last atomic.Pointer[generation]

	mu sync.Mutex
	// gens are the generations not yet over, by number.
	gens map[int64]*generation
	// alarm closes the generations that are over (rang); armedFor is the
	// generation it is set for, 0 when it is not set.
	alarm    *time.Timer
	armedFor int64
}

// generation is the waiters whose deadlines fall in one tick: over is
// closed once the tick has ended.
type generation struct {
	n    int64
	over chan struct{}
}

// newTurns returns size turns whose waiters' generations last a tick.
func newTurns(size int, tick time.Duration) *turns {
	t := &turns{ch: make(chan struct{}, size), tick: tick, base: time.Now(), gens: map[int64]*generation{}}
	t.alarm = time.AfterFunc(time.Hour, t.rang)
	t.alarm.Stop()
	return t
}

// tickOf is the length of a generation of waiters for operations bounded
// by timeout: a sixteenth of it (at least 1 ms), so that a wait ends
// within about 6% of Timeout after its deadline.
func tickOf(timeout time.Duration) time.Duration {
	return max(timeout/16, time.Millisecond)
}

// join returns the generation of a waiter whose wait must end by
// deadline (after now): the first whose tick ends at or after it.
func (t *turns) join(deadline time.Time) *generation {
	n := int64((deadline.Sub(t.base) + t.tick - 1) / t.tick)
	if g := t.last.Load(); g != nil && g.n == n {
		// Over already (closed) only if its tick, and so deadline, has
		// passed.
		return g
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.gens[n]
	if g == nil {
		g = &generation{n: n, over: make(chan struct{})}
		t.gens[n] = g
		if t.armedFor == 0 || n < t.armedFor {
			t.armedFor = n
			t.alarm.Reset(time.Until(t.base.Add(time.Duration(n) * t.tick)))
		}
	}
	t.last.Store(g)
	return g
}

// rang closes the generations whose tick has ended, and sets the alarm
// for the next one, if any.
func (t *turns) rang() {
	now := time.Since(t.base)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.armedFor = 0
	for n, g := range t.gens {
		if end := time.Duration(n) * t.tick; end <= now {
			close(g.over)
			delete(t.gens, n)
		} else if t.armedFor == 0 || n < t.armedFor {
			t.armedFor = n
		}
	}
	if t.armedFor != 0 {
		t.alarm.Reset(time.Duration(t.armedFor)*t.tick - now)
	}
}

// take waits for a turn until the operation's end (see turns); its error
// is then ctx's.
func (t *turns) take(ctx context.Context) error {
	if t == nil {
		return nil
	}
	select {
	case t.ch <- struct{}{}:
		return nil
	default:
	}
	oc := opOf(ctx)
	if oc == nil {
		select {
		case t.ch <- struct{}{}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if _, err := oc.left(); err != nil {
		return err
	}
	// A caller's deadline earlier than the store's is the operation's, and
	// its context's own timer ends it on time: wait on it too.
	var callerDone <-chan struct{}
	if d, ok := oc.Context.Deadline(); ok && !d.After(oc.deadline) {
		callerDone = oc.Context.Done()
	}
	g := t.join(oc.deadline)
	for {
		select {
		case t.ch <- struct{}{}:
			if _, err := oc.left(); err != nil {
				// Over while it waited (a caller's cancellation is seen
				// here): it borrows nothing, and the turn goes on to the
				// next waiter in line.
				t.give()
				return err
			}
			return nil
		case <-callerDone:
		case <-g.over:
		}
		if _, err := oc.left(); err != nil {
			return err
		}
		if isClosed(g.over) {
			// The clock the deadline was read on (a caller's wall-clock
			// deadline) says not yet: wait a tick more.
			g = t.join(time.Now().Add(t.tick))
		}
	}
}

// isClosed reports whether c is closed.
func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// opOf returns the operation whose context ctx is (its first attempt's,
// or a retry's of any depth); nil when it is none.
func opOf(ctx context.Context) *opCtx {
	for {
		r, isRetry := ctx.(retryCtx)
		if !isRetry {
			break
		}
		ctx = r.Context
	}
	oc, _ := ctx.(*opCtx)
	return oc
}

// give gives back a turn take took.
func (t *turns) give() {
	if t != nil {
		<-t.ch
	}
}
