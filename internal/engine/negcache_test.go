package engine

import (
	"fmt"
	"testing"
	"time"
)

// TestNegativeCacheFullDropsExpiredFirst: a full cache makes room by
// dropping expired entries before any still in force, even one used less
// recently: a rejected token is not sent upstream again before its TTL.
func TestNegativeCacheFullDropsExpiredFirst(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	c := newNegativeCache(30*time.Second, clock)

	c.add("expired-soon") // added first: expires at t+30s
	now = now.Add(time.Second)
	for i := range negativeCacheSize - 1 { // the cache is now full; these expire at t+31s
		c.add(fmt.Sprintf("live-%d", i))
	}
	now = now.Add(time.Second)
	if !c.rejected("expired-soon") { // a repeat of the rejection: the LRU moves it to the front
		t.Fatal("expired-soon should still be held")
	}
	now = now.Add(28*time.Second + 500*time.Millisecond) // t+30.5s: expired-soon has expired, live-* have not
	c.add("newcomer")

	if !c.rejected("live-0") {
		t.Fatal("live-0 (rejected 29.5 s ago, TTL 30 s) was evicted while an expired entry was kept; " +
			"an expired entry must go first")
	}
}
