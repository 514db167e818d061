package redisstore

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// A user that may do everything the link needs but PING (which the
// near cache's doc lists as needed) subscribes fine, then every PING is
// refused: the fence never holds, so nothing is served from the cache,
// yet Open and Check say nothing, and the link is redialled at the
// minimum pause (a subscription counts as healthy).
func TestReviewDNearLinkPingRefused(t *testing.T) {
	srv := storetest.Start(t)
	host := strings.TrimPrefix(srv.URL, "redis://")
	_, err := srv.Do("ACL", "SETUSER", "noping", "on", ">pw", "~*", "&*", "+@all", "-ping")
	require.NoError(t, err)
	st, openErr := Open("redis://noping:pw@"+host, Options{NearCache: &NearCache{Fence: 50 * time.Millisecond}})
	require.NotNil(t, st)
	defer st.(io.Closer).Close()
	r := st.(*openStore).redisStore
	key := nearMint(t, r, "noping", "p:noping")
	for range 50 {
		lookup(t, r, key)
		time.Sleep(10 * time.Millisecond)
	}
	checked := r.Check(context.Background(), []byte("one secret's fingerprint"), true)
	t.Logf("open: %v; check: %v; near hits %d; links %d", openErr, checked, r.near.hits.Load(), r.near.links.Load())
	assert.Zero(t, r.near.hits.Load(), "nothing can be served without PING")
	assert.ErrorIs(t, checked, store.ErrMisconfigured, "the link cannot work: Check should say so, as for SUBSCRIBE")
	assert.LessOrEqual(t, r.near.links.Load(), int64(10), "the link is not redialled in a tight loop")
}

// An ACL change at runtime that takes the channel away from a healthy
// link's user is reported by Check, and its repair clears the report.
func TestReviewDNearLinkRefusedAtRuntime(t *testing.T) {
	srv := storetest.Start(t)
	host := strings.TrimPrefix(srv.URL, "redis://")
	_, err := srv.Do("ACL", "SETUSER", "rt", "on", ">pw", "~*", "&*", "+@all")
	require.NoError(t, err)
	st, err := Open("redis://rt:pw@"+host, Options{NearCache: &NearCache{Fence: 50 * time.Millisecond}})
	require.NoError(t, err)
	defer st.(io.Closer).Close()
	r := st.(*openStore).redisStore
	fp := []byte("one secret's fingerprint")
	require.NoError(t, r.Check(context.Background(), fp, true))

	_, err = srv.Do("ACL", "SETUSER", "rt", "resetchannels")
	require.NoError(t, err)
	var checked error
	for range 100 {
		if checked = r.Check(context.Background(), fp, true); checked != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("after the ACL change: %v", checked)
	assert.ErrorIs(t, checked, store.ErrMisconfigured)

	_, err = srv.Do("ACL", "SETUSER", "rt", "&*")
	require.NoError(t, err)
	for range 200 {
		if checked = r.Check(context.Background(), fp, true); checked == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	assert.NoError(t, checked, "repaired")
}

// Check on a stalled Redis (SIGSTOP) and Open on a server that accepts
// TCP but never answers return, with an error, within their bounds.
func TestReviewDNearCheckOpenDoNotBlock(t *testing.T) {
	srv := storetest.Start(t)
	st, err := Open(srv.URL, Options{Timeout: 300 * time.Millisecond, NearCache: &NearCache{}})
	require.NoError(t, err)
	defer st.(io.Closer).Close()
	r := st.(*openStore).redisStore
	resume := srv.Stall()
	start := time.Now()
	checked := r.Check(context.Background(), []byte("fp"), true)
	t.Logf("stalled Check: %v after %v", checked, time.Since(start))
	assert.ErrorIs(t, checked, store.ErrUnavailable)
	resume()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start = time.Now()
	st2, err := Open("redis://"+ln.Addr().String(), Options{Timeout: 300 * time.Millisecond, NearCache: &NearCache{}})
	t.Logf("silent Open: %v after %v", err, time.Since(start))
	assert.ErrorIs(t, err, store.ErrUnavailable)
	if st2 != nil {
		st2.(io.Closer).Close()
	}
}
