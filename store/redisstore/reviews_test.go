package redisstore

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/sessiongate/sessiongate/store/storetest"
)

// Review S: a command cut off by its operation's own deadline (a read
// timeout) came back while Err was still nil (Done's timer had not fired),
// and the Sentinel guard took it for a dead primary: it forgot the
// primary, which emptied the pool and made concurrent writes redo. The
// guard asks remaining, as Err will answer.
func TestReviewSAgainPastDeadline(t *testing.T) {
	forgot, n := 0, 500
	for i := 0; i < n; i++ {
		s := &sentinelSet{addr: "127.0.0.1:1", wake: make(chan struct{})}
		oc := newOpCtx(context.Background(), 100*time.Microsecond)
		oc.Done() // a dial or a pool wait made Done's timer
		for time.Now().Before(oc.deadline) {
		}
		// the socket's read deadline (= the op's) fired: a net timeout
		err := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
		pause := time.Millisecond
		s.again(retryCtx{oc}, err, &pause)
		if s.gen.Load() != 0 {
			forgot++
		}
		oc.end()
	}
	t.Logf("primary forgotten for an op past its own deadline: %d/%d", forgot, n)
	if forgot > 0 {
		t.Errorf("again forgot the primary %d/%d times for an operation whose own deadline had passed", forgot, n)
	}
}

// The same on a real Sentinel set: an operation that runs only past its
// own deadline (a BLPOP nothing answers) fails with it, and never makes the
// store forget its primary.
func TestReviewSSentinelTimeoutForgets(t *testing.T) {
	set := storetest.StartSentinel(t, storetest.SentinelConfig{})
	st, err := Open(set.URL(), Options{Timeout: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.(interface{ Close() error }).Close()
	o := st.(*openStore)
	s := o.sentinels
	forgot := 0
	const n = 20
	for i := 0; i < n; i++ {
		g0 := s.gen.Load()
		err := o.redisStore.run(context.Background(), false, func(conn redis.Conn) error {
			_, err := conn.Do("BLPOP", "reviews-nothing", 0) // a command the op's deadline ends
			return err
		})
		if s.gen.Load() != g0 {
			forgot++
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err %v, want the operation's deadline", err)
		}
	}
	t.Logf("primary forgotten (gen bumped, pool dropped) by %d/%d ops that only ran past their own deadline", forgot, n)
	if forgot > 0 {
		t.Errorf("an op's own deadline made the store forget the primary %d/%d times", forgot, n)
	}
}
