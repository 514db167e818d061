package redisstore

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingCtx is a parent that is neither a cancelCtx nor an afterFuncer:
// WithDeadline on it starts a goroutine per derived context.
type countingCtx struct {
	context.Context
	dones atomic.Int64
}

func (c *countingCtx) Done() <-chan struct{} { c.dones.Add(1); return c.Context.Done() }

func settleGoroutines(base int) int {
	var n int
	for i := 0; i < 200; i++ {
		runtime.GC()
		n = runtime.NumGoroutine()
		if n <= base {
			return n
		}
		time.Sleep(5 * time.Millisecond)
	}
	return n
}

// Concurrent Done/Err/left/end from many goroutines, with custom and
// cancelCtx parents, children and AfterFuncs: after end Done is closed,
// Err is non-nil and stable, and no goroutine remains.
func TestReviewOOpCtxHammer(t *testing.T) {
	base := runtime.NumGoroutine()
	var afterRan atomic.Int64
	const iters = 2000
	var cancels []context.CancelFunc
	for i := 0; i < iters; i++ {
		var parent context.Context
		var pcancel context.CancelFunc = func() {}
		switch i % 3 {
		case 0:
			inner, c := context.WithCancel(context.Background())
			parent, pcancel = &countingCtx{Context: inner}, c
		case 1:
			parent, pcancel = context.WithCancel(context.Background())
		default:
			parent = context.Background()
		}
		timeout := time.Hour
		if i%5 == 0 {
			timeout = time.Duration(i%7) * time.Microsecond
		}
		oc := newOpCtx(parent, timeout)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch g % 4 {
				case 0:
					_ = oc.Done()
				case 1:
					errs[g] = oc.Err()
				case 2:
					_, errs[g] = oc.left()
				case 3:
					ch, stop := context.WithCancel(oc)
					defer stop()
					stopAF := context.AfterFunc(oc, func() { afterRan.Add(1) })
					_ = stopAF
					_ = ch
				}
			}()
		}
		if i%2 == 0 && i%3 != 0 {
			pcancel()
		}
		if i%4 == 1 {
			oc.end()
		}
		wg.Wait()
		oc.end()
		oc.end()
		if !isClosed(oc.Done()) {
			t.Fatalf("iter %d: Done open after end", i)
		}
		e1 := oc.Err()
		if e1 == nil {
			t.Fatalf("iter %d: Err nil after end", i)
		}
		for _, e := range errs {
			if e != nil && !errors.Is(e1, e) {
				t.Fatalf("iter %d: Err changed: first %v then %v", i, e, e1)
			}
		}
		if e2 := oc.Err(); e2 != e1 {
			t.Fatalf("iter %d: Err not memoized %v %v", i, e1, e2)
		}
		cancels = append(cancels, pcancel)
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	if n := settleGoroutines(base); n > base {
		buf := make([]byte, 1<<16)
		t.Fatalf("goroutines: %d > base %d\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
	t.Logf("after funcs ran: %d of %d", afterRan.Load(), iters*2)
}

// Err non-nil must imply Done closed (context.Context's contract), also
// while a Done is being made concurrently.
func TestReviewOErrImpliesDone(t *testing.T) {
	bad := 0
	for i := 0; i < 20000; i++ {
		parent, cancel := context.WithCancel(context.Background())
		oc := newOpCtx(parent, time.Hour)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _ = oc.Done() }()
		go func() { defer wg.Done(); cancel() }()
		var seen bool
		for j := 0; j < 50 && !seen; j++ {
			if oc.Err() != nil {
				seen = true
				// Done is what the caller waits on: it must be closed now.
				if !isClosed(oc.Done()) {
					bad++
				}
			}
		}
		wg.Wait()
		oc.end()
	}
	t.Logf("Err non-nil while Done open: %d times", bad)
	if bad > 0 {
		t.Errorf("Err non-nil while Done open: %d times", bad)
	}
}

// Done after end is closed; a child of an ended op is canceled at once;
// an AfterFunc registered after end runs.
func TestReviewOAfterEnd(t *testing.T) {
	base := runtime.NumGoroutine()
	for _, waited := range []bool{false, true} {
		oc := newOpCtx(&countingCtx{Context: context.Background()}, time.Hour)
		if waited {
			_ = oc.Done()
		}
		oc.end()
		if !isClosed(oc.Done()) {
			t.Fatal("Done open after end")
		}
		ch, stop := context.WithCancel(oc)
		<-ch.Done()
		stop()
		ran := make(chan struct{})
		context.AfterFunc(oc, func() { close(ran) })
		<-ran
		if !errors.Is(oc.Err(), context.Canceled) {
			t.Fatalf("Err %v", oc.Err())
		}
	}
	// Deadline first, then end: DeadlineExceeded stays.
	oc := newOpCtx(context.Background(), time.Nanosecond)
	for oc.Err() == nil {
	}
	oc.end()
	if !errors.Is(oc.Err(), context.DeadlineExceeded) {
		t.Fatalf("memo lost: %v", oc.Err())
	}
	// Deadline passes while Done is made, never Err'd, then end: Canceled or DE both fine.
	oc = newOpCtx(context.Background(), time.Millisecond)
	<-oc.Done()
	oc.end()
	if !errors.Is(oc.Err(), context.DeadlineExceeded) {
		t.Fatalf("Done closed by deadline, then end: Err %v", oc.Err())
	}
	if n := settleGoroutines(base); n > base {
		t.Fatalf("goroutines: %d > %d", n, base)
	}
	// context.Cause of an ended op: what does it say?
	pc, c := context.WithCancel(context.Background())
	defer c()
	oc = newOpCtx(pc, time.Hour)
	oc.end()
	t.Logf("Cause of ended op (live parent): %v; Err: %v", context.Cause(oc), oc.Err())
	oc = newOpCtx(pc, time.Nanosecond)
	<-oc.Done()
	t.Logf("Cause of op past deadline (live parent): %v; Err: %v", context.Cause(oc), oc.Err())
	oc.end()
}

// Review O: Err could say DeadlineExceeded, by the clock, while a Done
// being made just before the deadline was still open (context.Context
// requires Done closed once Err is not nil).
func TestReviewOErrImpliesDoneDeadline(t *testing.T) {
	bad := 0
	for i := 0; i < 20000; i++ {
		oc := newOpCtx(context.Background(), time.Duration(i%40)*time.Microsecond)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); _ = oc.Done() }()
		for oc.Err() == nil {
		}
		if !isClosed(oc.Done()) {
			bad++
		}
		wg.Wait()
		oc.end()
	}
	t.Logf("Err non-nil while Done open: %d of 20000", bad)
	if bad > 0 {
		t.Errorf("Err non-nil while Done open: %d of 20000", bad)
	}
}
