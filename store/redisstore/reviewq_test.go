package redisstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

var errMine = errors.New("mine")

// Review Q: the caller's deadline (with a cause) ended the op before any
// Done: Cause is the caller's, as for context.WithDeadline.
func TestReviewQCauseCallerDeadline(t *testing.T) {
	parent, cancel := context.WithTimeoutCause(context.Background(), time.Millisecond, errMine)
	defer cancel()
	<-parent.Done()
	oc := newOpCtx(parent, time.Second)
	defer oc.end()
	std, c2 := context.WithDeadline(parent, time.Now().Add(time.Second))
	defer c2()
	t.Logf("op: Err=%v Cause=%v ; WithDeadline: Err=%v Cause=%v", oc.Err(), context.Cause(oc), std.Err(), context.Cause(std))
	if context.Cause(oc) != context.Cause(std) {
		t.Errorf("Cause %v, WithDeadline's %v", context.Cause(oc), context.Cause(std))
	}
	oc2 := newOpCtx(parent, time.Second)
	defer oc2.end()
	_, err := oc2.left()
	t.Logf("left path: Err=%v Cause=%v", err, context.Cause(oc2))
	if context.Cause(oc2) != errMine {
		t.Errorf("left path Cause %v", context.Cause(oc2))
	}
}

// Review Q: a caller's context that breaks the contract (Err non-nil, Done
// never closed) holds left() up to the op's deadline at most.
type badCtx struct{ context.Context }

func (badCtx) Err() error { return context.Canceled }

func TestReviewQLeftBadParent(t *testing.T) {
	oc := newOpCtx(badCtx{context.Background()}, 300*time.Millisecond)
	_ = oc.Done()
	start := time.Now()
	_, err := oc.left()
	t.Logf("left blocked %v, err %v", time.Since(start), err)
	if err == nil {
		t.Error("left: no error from an op whose caller's context says it ended")
	}
	oc.end()
}

// Review Q: an op whose caller's context is an op; both hammered.
func TestReviewQHammer(t *testing.T) {
	for i := 0; i < 2000; i++ {
		base, cancel := context.WithCancelCause(context.Background())
		p := newOpCtx(base, time.Duration(i%5)*50*time.Microsecond)
		c := newOpCtx(p, time.Duration(i%7)*40*time.Microsecond)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var first error
		check := func(e error) {
			if e == nil {
				return
			}
			select {
			case <-c.Done():
			default:
				t.Errorf("Err %v with Done open", e)
			}
			mu.Lock()
			if first == nil {
				first = e
			} else if first != e {
				t.Errorf("Err changed %v -> %v", first, e)
			}
			mu.Unlock()
		}
		wg.Add(5)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				_, e := c.left()
				check(e)
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				check(c.Err())
				_ = context.Cause(c)
			}
		}()
		go func() {
			defer wg.Done()
			if i%3 == 0 {
				<-c.Done()
			} else {
				_ = c.Done()
			}
		}()
		go func() {
			defer wg.Done()
			if i%4 == 0 {
				cancel(errMine)
			}
			if i%2 == 0 {
				p.end()
			}
		}()
		go func() {
			defer wg.Done()
			if i%5 == 1 {
				time.Sleep(100 * time.Microsecond)
				c.end()
			}
		}()
		wg.Wait()
		c.end()
		check(c.Err())
		p.end()
		cancel(nil)
	}
}

// Review Q: two readers of an op over by its deadline (no Done): one could
// see the sentinel the other had set before it settled, and settle
// Canceled for good.
func TestReviewQDeadlineRaceCanceled(t *testing.T) {
	bad := 0
	n := 20000
	for i := 0; i < n; i++ {
		oc := newOpCtx(context.Background(), -time.Second) // deadline passed
		var wg sync.WaitGroup
		var e1, e2 error
		start := make(chan struct{})
		wg.Add(2)
		go func() { defer wg.Done(); <-start; e1 = oc.Err() }()
		go func() { defer wg.Done(); <-start; _, e2 = oc.left() }()
		close(start)
		wg.Wait()
		if e1 != context.DeadlineExceeded || e2 != context.DeadlineExceeded {
			bad++
			if bad < 4 {
				t.Errorf("iteration %d: Err %v, left %v; want DeadlineExceeded", i, e1, e2)
			}
		}
	}
	t.Logf("%d of %d wrong", bad, n)
}

// Review Q: on a retry (its context wrapped the operation's with
// WithValue), remaining skipped left(): it said DeadlineExceeded while Err
// was still nil, and Err then ended Canceled. A retry's context is a
// retryCtx, which remaining sees through.
func TestReviewQRetryPathBypassesLeft(t *testing.T) {
	seen := 0
	for i := 0; i < 200; i++ {
		oc := newOpCtx(context.Background(), time.Millisecond)
		_ = oc.Done() // a dial or pool wait made the timer
		for time.Until(oc.deadline) > 0 {
		}
		_, _, rerr := remaining(retryCtx{oc})
		if rerr != nil && oc.Err() == nil {
			seen++
			oc.end()
			if seen == 1 {
				t.Logf("remaining %v with Err nil; after end Err %v", rerr, oc.Err())
			}
			continue
		}
		oc.end()
	}
	t.Logf("%d of 200", seen)
	if seen > 0 {
		t.Errorf("remaining answered over before Err in %d of 200", seen)
	}
}
