package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Review R: a third attempt (Sentinel, during a failover) wrapped the
// retry context again, and remaining no longer went through left(): a
// retry wraps the op once, and remaining unwraps any depth.
func TestReviewRDoubleRetry(t *testing.T) {
	bad := 0
	for i := 0; i < 2000; i++ {
		oc := newOpCtx(context.Background(), 200*time.Microsecond)
		oc.Done()
		var ctx context.Context = oc
		ctx = retryCtx{ctx}
		ctx = retryCtx{ctx}
		for time.Now().Before(oc.deadline) {
		}
		_, _, err := remaining(ctx)
		if err != nil && oc.Err() == nil {
			bad++
		}
		oc.end()
	}
	t.Logf("remaining over before Err: %d/2000", bad)
	if bad > 0 {
		t.Errorf("remaining(retryCtx{retryCtx{oc}}) answered over before oc.Err %d times", bad)
	}
}

// Review R: a deadline that passed unobserved before end: Err is Canceled,
// as end documents (it reads no clock).
func TestReviewREndAfterDeadline(t *testing.T) {
	oc := newOpCtx(context.Background(), time.Microsecond)
	for time.Now().Before(oc.deadline) {
	}
	oc.end()
	t.Logf("Err=%v Cause=%v", oc.Err(), context.Cause(oc))
	// As end's doc says: the error Err already returned, else Canceled
	// (end reads no clock; no code reads an op's Err after its end).
	if !errors.Is(oc.Err(), context.Canceled) {
		t.Errorf("end after an unobserved deadline: Err %v, want Canceled", oc.Err())
	}
}

// Caller canceled with a cause, nothing observed, then end: Cause should be the caller's.
func TestReviewREndAfterCaller(t *testing.T) {
	cause := errors.New("x")
	parent, cancel := context.WithCancelCause(context.Background())
	oc := newOpCtx(parent, time.Hour)
	cancel(cause)
	oc.end()
	t.Logf("Err=%v Cause=%v", oc.Err(), context.Cause(oc))
	if context.Cause(oc) != cause {
		t.Errorf("Cause %v, want caller's", context.Cause(oc))
	}
}

// Nested op under an op: child's left must not answer over before child's Err.
func TestReviewRNested(t *testing.T) {
	bad := 0
	for i := 0; i < 2000; i++ {
		p := newOpCtx(context.Background(), 200*time.Microsecond)
		c := newOpCtx(p, time.Hour)
		c.Done()
		for time.Now().Before(p.deadline) {
		}
		_, err := c.left()
		if err != nil && c.Err() == nil {
			bad++
		}
		if err != nil && c.Err() != err {
			bad++
		}
		c.end()
		p.end()
	}
	if bad > 0 {
		t.Errorf("nested: %d", bad)
	}
}

// WithoutCancel / AfterFunc children of an op.
func TestReviewRChildren(t *testing.T) {
	oc := newOpCtx(context.Background(), time.Hour)
	wc := context.WithoutCancel(oc)
	ran := make(chan struct{})
	stop := context.AfterFunc(oc, func() { close(ran) })
	_ = stop
	oc.end()
	<-ran
	if wc.Err() != nil {
		t.Fatal(wc.Err())
	}
	if context.Cause(wc) != nil {
		t.Errorf("Cause of WithoutCancel child: %v", context.Cause(wc))
	}
	// After end with no Done, WithoutCancel child's Cause.
	oc2 := newOpCtx(context.Background(), time.Hour)
	oc2.end()
	wc2 := context.WithoutCancel(oc2)
	t.Logf("wc2 Err=%v Cause=%v", wc2.Err(), context.Cause(wc2))
	if context.Cause(wc2) != nil {
		t.Errorf("Cause of WithoutCancel child of ended op: %v", context.Cause(wc2))
	}
}

func TestReviewRSingleRetryControl(t *testing.T) {
	bad := 0
	for i := 0; i < 2000; i++ {
		oc := newOpCtx(context.Background(), 200*time.Microsecond)
		oc.Done()
		ctx := retryCtx{oc}
		for time.Now().Before(oc.deadline) {
		}
		_, _, err := remaining(ctx)
		if err != nil && oc.Err() == nil {
			bad++
		}
		oc.end()
	}
	if bad > 0 {
		t.Errorf("single: %d", bad)
	}
}

// Concurrent Err/left/Done/end with caller cancel near the deadline.
func TestReviewRConcurrent(t *testing.T) {
	bad := 0
	for i := 0; i < 3000; i++ {
		parent, cancel := context.WithCancelCause(context.Background())
		oc := newOpCtx(parent, 100*time.Microsecond)
		errs := make(chan error, 8)
		start := make(chan struct{})
		for g := 0; g < 4; g++ {
			g := g
			go func() {
				<-start
				var first error
				for k := 0; k < 50; k++ {
					var e error
					switch (g + k) % 4 {
					case 0:
						e = oc.Err()
					case 1:
						_, e = oc.left()
					case 2:
						oc.Done()
						e = oc.Err()
					case 3:
						e = oc.Err()
					}
					if e != nil {
						select {
						case <-oc.Done():
						default:
							errs <- errors.New("Err non-nil, Done open")
							return
						}
						if first == nil {
							first = e
						} else if e != first {
							errs <- errors.New("changed: " + first.Error() + " -> " + e.Error())
							return
						}
					}
				}
				errs <- nil
			}()
		}
		close(start)
		if i%2 == 0 {
			cancel(errors.New("c"))
		}
		for g := 0; g < 4; g++ {
			if e := <-errs; e != nil {
				bad++
				if bad < 5 {
					t.Log(e)
				}
			}
		}
		oc.end()
		cancel(nil)
		e1 := oc.Err()
		if e1 == nil || oc.Err() != e1 {
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("bad %d", bad)
	}
}
