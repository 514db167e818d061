package guesslimit

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a clock that moves only when told, set years away from the
// wall clock: a bucket that read the wall clock would be full at once.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// The middleware's defaults.
const (
	burst    = 20
	interval = 3 * time.Second
)

// fail records one failure of ip as the middleware does: it asks first
// whether ip is already limited (then it answers 429), and reports whether
// it was.
func fail(l *Limiter, ip string) (limited, lockout bool) {
	limited = l.Wait(ip) > 0
	return limited, l.Failed(ip, 1)
}

// failures records n failures of ip and counts those made while ip was
// limited, and the lockouts reported.
func failures(l *Limiter, ip string, n int) (limited, lockouts int) {
	for range n {
		lim, lock := fail(l, ip)
		if lim {
			limited++
		}
		if lock {
			lockouts++
		}
	}
	return limited, lockouts
}

// A client may fail burst times; past that, each failure is made while
// limited, and the lockout is reported once however many there are.
func TestAClientIsLimitedAfterBurstFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name              string
		failures, limited int
	}{
		{"the burst", 20, 0},
		{"thirty browsers behind one NAT", 30, 10},
		{"a stale client", 40, 20},
		{"a guesser", 200, 180},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := New(burst, interval, newClock().Now)
			limited, lockouts := failures(l, "203.0.113.7", tc.failures)
			assert.Equal(t, tc.limited, limited)
			assert.Equal(t, 1, lockouts, "reported once, by the failure that empties the bucket")
			assert.Equal(t, interval, l.Wait("203.0.113.7"), "Retry-After: one interval")
		})
	}
}

func TestOneMoreFailurePerInterval(t *testing.T) {
	t.Parallel()
	clock := newClock()
	l := New(burst, interval, clock.Now)
	const guesser = "203.0.113.9"
	limited, _ := failures(l, guesser, 20)
	require.Zero(t, limited)
	assert.Equal(t, interval, l.Wait(guesser))
	assert.Zero(t, l.Wait("198.51.100.1"), "other clients are not affected")

	clock.Advance(interval)
	assert.Zero(t, l.Wait(guesser), "one more failure per interval")
	lim, lockout := fail(l, guesser)
	assert.False(t, lim)
	assert.False(t, lockout, "the same lockout: the bucket was never full again")
	assert.Equal(t, interval, l.Wait(guesser))
}

// Failures past an empty bucket are not debt: a client is limited for one
// interval after its last failure, and forgiven burst intervals after it.
func TestFailuresPastTheBucketAreNotDebt(t *testing.T) {
	t.Parallel()
	clock := newClock()
	l := New(2, interval, clock.Now)
	assert.True(t, l.Failed("192.0.2.1", 5), "five at once empty a bucket of two")
	assert.Equal(t, interval, l.Wait("192.0.2.1"))
	failures(l, "192.0.2.1", 100)
	assert.Equal(t, interval, l.Wait("192.0.2.1"))
	clock.Advance(interval)
	assert.Zero(t, l.Wait("192.0.2.1"))

	clock.Advance(interval)
	assert.False(t, l.Failed("192.0.2.1", 1), "one of two tokens left")
	assert.True(t, l.Failed("192.0.2.1", 1), "the bucket was full: a new lockout")
}

func TestFailedRecordsNothingForNoFailure(t *testing.T) {
	t.Parallel()
	l := New(burst, interval, newClock().Now)
	assert.False(t, l.Failed("192.0.2.1", 0))
	assert.False(t, l.Failed("192.0.2.1", -1))
	assert.False(t, l.Active())
	assert.Empty(t, l.Clients())
}

// A lockout is reported once, however many failures it refuses; the next
// lockout, after the client was forgiven, is reported again.
func TestALockoutIsReportedOnce(t *testing.T) {
	t.Parallel()
	clock := newClock()
	l := New(burst, interval, clock.Now)
	const guesser = "2001:db8:7:7::1"
	limited, lockouts := failures(l, guesser, 200)
	require.Equal(t, 180, limited)
	assert.Equal(t, 1, lockouts)
	assert.Equal(t, []string{"2001:db8:7:7::/64"}, l.Clients(), "the limited key, an IPv6 /64")

	clock.Advance(burst * interval) // the whole bucket back
	_, lockouts = failures(l, guesser, 30)
	assert.Equal(t, 1, lockouts, "a new lockout")
}

func TestIPv6ClientsAreCountedByTheirSlash64(t *testing.T) {
	t.Parallel()
	l := New(burst, interval, newClock().Now)
	for i := range 20 {
		l.Failed(fmt.Sprintf("2001:db8:1:2::%x", i+1), 1)
	}
	assert.Equal(t, interval, l.Wait("2001:db8:1:2:ffff::1"))
	assert.Zero(t, l.Wait("2001:db8:1:3::1"), "another /64")
}

func TestClientKey(t *testing.T) {
	t.Parallel()
	for ip, want := range map[string]string{
		"203.0.113.7":             "203.0.113.7",
		"::ffff:203.0.113.7":      "203.0.113.7", // one client, however written
		"::FFFF:203.0.113.7":      "203.0.113.7",
		"::ffff:cb00:7107":        "203.0.113.7",
		"203.000.113.7":           "203.000.113.7", // not an address Go parses: as is
		"2001:db8:7:7::1":         "2001:db8:7:7::/64",
		"2001:db8:7:7:ffff:1:2:3": "2001:db8:7:7::/64",
		"fe80::1%eth0":            "fe80::/64",
		"not an address":          "not an address",
		"":                        "",
	} {
		t.Run(ip, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, want, ClientKey(ip))
		})
	}
}

// The buckets refill from the clock handed to New, set years before the
// wall clock, and only when it moves.
func TestTheInjectedClockDrivesRefill(t *testing.T) {
	t.Parallel()
	clock := newClock()
	l := New(2, interval, clock.Now)
	const ip = "192.0.2.7"
	l.Failed(ip, 2)
	assert.Equal(t, interval, l.Wait(ip))
	assert.Equal(t, interval, l.Wait(ip), "no refill while the clock stands")

	clock.Advance(time.Second)
	assert.Equal(t, 2*time.Second, l.Wait(ip), "a third of a token back")
	clock.Advance(2 * time.Second)
	assert.Zero(t, l.Wait(ip), "one token back")
	assert.False(t, l.Failed(ip, 1), "the same lockout")
	assert.Equal(t, interval, l.Wait(ip))

	clock.Advance(2 * interval)
	l.Failed("192.0.2.8", 1) // sweeps: an interval has passed since the last sweep
	assert.Equal(t, []string{"192.0.2.8"}, l.Clients(), "full again, so forgotten")
}

// The table is swept at most once per interval, of the clients whose
// bucket is full again.
func TestTheSweepForgetsClientsThatAreFullAgain(t *testing.T) {
	t.Parallel()
	clock := newClock()
	l := New(2, interval, clock.Now)
	l.Failed("192.0.2.1", 2)
	l.Failed("192.0.2.2", 1)
	clock.Advance(interval)
	l.Failed("192.0.2.3", 2)
	assert.ElementsMatch(t, []string{"192.0.2.1", "192.0.2.3"}, l.Clients(), "192.0.2.2 is full again")

	clock.Advance(interval - time.Nanosecond)
	l.Failed("192.0.2.4", 1)
	assert.Len(t, l.Clients(), 3, "no sweep within an interval of the last")
	assert.True(t, l.Active())

	clock.Advance(10 * interval)
	l.Failed("192.0.2.5", 1)
	assert.Equal(t, []string{"192.0.2.5"}, l.Clients())
}

// Past maxClients, clients not yet tracked are not limited (fail open)
// until a sweep makes room; those tracked stay limited.
func TestPastMaxClientsNewClientsAreNotLimited(t *testing.T) {
	t.Parallel()
	clock := newClock()
	l := New(1, interval, clock.Now)
	ip := func(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&0xff, i&0xff) }
	for i := range maxClients {
		require.True(t, l.Failed(ip(i), 1))
	}
	assert.False(t, l.Failed("192.0.2.1", 5), "not tracked")
	assert.Zero(t, l.Wait("192.0.2.1"))
	assert.Equal(t, interval, l.Wait(ip(0)), "tracked clients stay limited")
	assert.False(t, l.Failed(ip(0), 1), "the same lockout")

	clock.Advance(interval / 2)
	l.Failed(ip(1), 1) // half a token back, and one more failure
	clock.Advance(interval / 2)
	assert.True(t, l.Failed("192.0.2.1", 1), "a full table is swept at once: room for the newcomer")
	assert.ElementsMatch(t, []string{ip(1), "192.0.2.1"}, l.Clients())
}

func TestNilLimiterLimitsNothing(t *testing.T) {
	t.Parallel()
	l := New(-1, interval, nil)
	require.Nil(t, l)
	assert.False(t, l.Failed("192.0.2.1", 100))
	assert.Zero(t, l.Wait("192.0.2.1"))
	assert.False(t, l.Active())
	assert.Nil(t, l.Clients())
	assert.Zero(t, l.Waiting("192.0.2.1"))
}

func TestABurstOfZeroLimitsFromTheFirstFailure(t *testing.T) {
	t.Parallel()
	l := New(0, interval, newClock().Now)
	assert.Zero(t, l.Wait("192.0.2.1"))
	assert.True(t, l.Failed("192.0.2.1", 1))
	assert.Equal(t, interval, l.Wait("192.0.2.1"))
}

func TestNewPanicsWithoutAnInterval(t *testing.T) {
	t.Parallel()
	assert.PanicsWithValue(t, "sessiongate/guesslimit: interval must be positive", func() { New(burst, 0, nil) })
	assert.NotPanics(t, func() { New(-1, 0, nil) }, "a limiter turned off needs no interval")
}

// Whole intervals give back whole tokens, at every interval: the float
// arithmetic of the buckets decides as exact arithmetic would (to the
// nanosecond the clock counts in).
func TestWholeIntervalsGiveBackWholeTokens(t *testing.T) {
	t.Parallel()
	for _, interval := range []time.Duration{
		time.Millisecond, 100 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second,
		49 * time.Second, 4*time.Minute + 9*time.Second, time.Hour,
	} {
		for _, burst := range []int{1, 2, 20, 37} {
			t.Run(fmt.Sprintf("%v/%d", interval, burst), func(t *testing.T) {
				t.Parallel()
				clock := newClock()
				l := New(burst, interval, clock.Now)
				require.True(t, l.Failed("192.0.2.1", burst))
				assert.Equal(t, interval, l.Wait("192.0.2.1"))
				clock.Advance(interval / 3)
				assert.Equal(t, interval-interval/3, l.Wait("192.0.2.1"))
				clock.Advance(interval - interval/3)
				assert.Zero(t, l.Wait("192.0.2.1"), "one token back")
				clock.Advance(time.Duration(burst-1) * interval)
				assert.True(t, l.Failed("192.0.2.1", burst), "the bucket was full: a new lockout")
				clock.Advance(time.Duration(burst) * interval)
				l.Failed("192.0.2.2", 1) // sweeps
				assert.Equal(t, []string{"192.0.2.2"}, l.Clients(), "full again, so forgotten")
			})
		}
	}
}

// TestAClockSteppedBackForgivesNothing: buckets never see time run
// backwards. rate.Limiter would take an earlier reading as its last
// refill and refill that span again once the clock caught up, freeing a
// locked-out client (NTP stepping back a clock without a monotonic
// reading).
func TestAClockSteppedBackForgivesNothing(t *testing.T) {
	t.Parallel()
	clock := newClock()
	l := New(20, 3*time.Second, clock.Now)
	const ip = "192.0.2.1"
	require.True(t, l.Failed(ip, 20), "locked out")
	clock.Advance(-time.Minute)
	l.Failed(ip, 1) // read at the earlier time
	clock.Advance(time.Minute)
	assert.Positive(t, l.Wait(ip), "no time has passed since the lockout: still limited")
}

// TestAClockSteppedForwardAndBackHoldsOnlyWhoFailedMeanwhile: each bucket
// keeps its own latest time, so a clock stepped forward by mistake and then
// corrected holds back only the clients that failed during the bad
// reading, not one locked out after the correction.
func TestAClockSteppedForwardAndBackHoldsOnlyWhoFailedMeanwhile(t *testing.T) {
	t.Parallel()
	clock := newClock()
	l := New(20, 3*time.Second, clock.Now)
	clock.Advance(365 * 24 * time.Hour)
	l.Failed("198.51.100.1", 1) // a failure read during the bad year
	clock.Advance(-365 * 24 * time.Hour)
	const ip = "192.0.2.1"
	require.True(t, l.Failed(ip, 20), "locked out after the correction")
	clock.Advance(time.Hour)
	assert.Zero(t, l.Wait(ip), "an hour later its bucket is full again")
}
