package redisstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Review P: left() after Done made, the deadline passed and the timer not
// yet fired, said DeadlineExceeded while Err() was nil and Done open, and
// an end then made Err() say Canceled.
func TestReviewPLeftVsErr(t *testing.T) {
	bad := 0
	for i := 0; i < 2000; i++ {
		oc := newOpCtx(context.Background(), time.Millisecond)
		done := oc.Done()
		for time.Now().Before(oc.deadline) {
		}
		_, lerr := oc.left()
		eerr := oc.Err()
		open := !isClosed(done)
		if lerr != nil && eerr == nil && open {
			bad++
		}
		oc.end()
	}
	t.Logf("left()=DeadlineExceeded while Err()==nil and Done open: %d/2000", bad)
	if bad > 0 {
		t.Errorf("left() said the operation was over while Err() did not: %d/2000", bad)
	}
}

// Review P: context.Cause of an op disagreed with Err once the caller's
// context was canceled later. A caller's own cause, when it ended the op
// first, stays the Cause.
func TestReviewPCause(t *testing.T) {
	x := errors.New("parent cause X")
	parent, cancel := context.WithCancelCause(context.Background())
	oc := newOpCtx(parent, time.Nanosecond)
	time.Sleep(time.Millisecond)
	err := oc.Err()
	cancel(x)
	t.Logf("deadline: Err=%v Cause=%v", err, context.Cause(oc))
	if !errors.Is(context.Cause(oc), context.DeadlineExceeded) {
		t.Errorf("Cause(oc)=%v, Err=%v", context.Cause(oc), oc.Err())
	}
	parent2, cancel2 := context.WithCancelCause(context.Background())
	oc2 := newOpCtx(parent2, time.Hour)
	oc2.end()
	cancel2(x)
	t.Logf("after end: Err=%v Cause=%v", oc2.Err(), context.Cause(oc2))
	if !errors.Is(context.Cause(oc2), context.Canceled) {
		t.Errorf("after end Cause(oc)=%v, Err=%v", context.Cause(oc2), oc2.Err())
	}
	// Done made, then deadline
	parent3, cancel3 := context.WithCancelCause(context.Background())
	oc3 := newOpCtx(parent3, time.Millisecond)
	<-oc3.Done()
	cancel3(x)
	t.Logf("via Done: Err=%v Cause=%v", oc3.Err(), context.Cause(oc3))
	if !errors.Is(context.Cause(oc3), context.DeadlineExceeded) {
		t.Errorf("via Done Cause(oc)=%v, Err=%v", context.Cause(oc3), oc3.Err())
	}
	oc3.end()
	// The caller's context ends the op first: its cause is the Cause.
	parent4, cancel4 := context.WithCancelCause(context.Background())
	oc4 := newOpCtx(parent4, time.Hour)
	cancel4(x)
	if !errors.Is(oc4.Err(), context.Canceled) {
		t.Errorf("Err %v, want Canceled", oc4.Err())
	}
	oc4.end()
	if c := context.Cause(oc4); c != x {
		t.Errorf("Cause %v, want the caller's %v", c, x)
	}
}

// Review P: a custom parent, Err/left/Done/end racing, the parent
// canceled around them: Err never changes once set, nor is it set while
// Done is open.
func TestReviewPHammer(t *testing.T) {
	for i := 0; i < 3000; i++ {
		base, bc := context.WithCancel(context.Background())
		p := &countingCtx{Context: base}
		oc := newOpCtx(p, time.Duration(i%3)*50*time.Microsecond)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var first error
		check := func(err error) {
			if err == nil {
				return
			}
			if !isClosed(oc.Done()) {
				t.Errorf("Err %v with Done open", err)
			}
			mu.Lock()
			if first == nil {
				first = err
			}
			mu.Unlock()
		}
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for k := 0; k < 5; k++ {
					switch (g + k) % 4 {
					case 0:
						check(oc.Err())
					case 1:
						oc.left()
					case 2:
						oc.Done()
					case 3:
						if g == 3 {
							bc()
						}
					}
				}
			}(g)
		}
		wg.Add(1)
		go func() { defer wg.Done(); oc.end() }()
		wg.Wait()
		e := oc.Err()
		if e == nil || !isClosed(oc.Done()) {
			t.Fatalf("after end: Err=%v", e)
		}
		if first != nil && e != first {
			t.Fatalf("Err changed: %v then %v", first, e)
		}
		if e2 := oc.Err(); e2 != e {
			t.Fatalf("Err changed %v %v", e, e2)
		}
		bc()
	}
}

func TestReviewPLeftThenEnd(t *testing.T) {
	n := 0
	for i := 0; i < 1000; i++ {
		oc := newOpCtx(context.Background(), time.Millisecond)
		oc.Done()
		for time.Now().Before(oc.deadline) {
		}
		_, e1 := oc.left()
		oc.end()
		if e2 := oc.Err(); e1 != nil && e2 != e1 {
			n++
		}
	}
	if n > 0 {
		t.Errorf("left() said DeadlineExceeded, then Err() after end said Canceled: %d/1000", n)
	}
}
