package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/backend/backendtest"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// pickOn returns the first of gen(0), gen(1), ... whose key(v) is on node.
func pickOn(c *storetest.Cluster, node *storetest.Server, gen func(i int) string, key func(string) string) string {
	for i := 0; ; i++ {
		v := gen(i)
		if c.Owner(key(v)) == node {
			return v
		}
	}
}

// continuationCase is a session S of a user and a mint that continues it
// with another token, their keys on three different nodes (the user's
// on one, S's on another, the continuation's on the third), as the
// engine's SignOut and mint would write them.
type continuationCase struct {
	user, oldKey, newKey string
	oldMark              string
	cont                 backend.NewSession
	end                  backend.Ending
	newNode              *storetest.Server
}

func newContinuationCase(t *testing.T, c *storetest.Cluster, st *clusterStore, name string) continuationCase {
	t.Helper()
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	sessionKey := func(tok string) string { return st.sessionKey(format.KeyOf(tok)) }
	n0, n1, n2 := c.Primary(0), c.Primary(8000), c.Primary(16000)
	require.True(t, n0 != nil && n1 != nil && n2 != nil && n0 != n1 && n1 != n2 && n0 != n2, "three primaries")
	user := pickOn(c, n0, func(i int) string { return fmt.Sprintf("p:%s%d", name, i) }, st.indexKey)
	oldTok := pickOn(c, n1, func(i int) string { return ctok(fmt.Sprintf("%s-old%d", name, i), "v") }, sessionKey)
	newTok := pickOn(c, n2, func(i int) string { return ctok(fmt.Sprintf("%s-new%d", name, i), "v") }, sessionKey)
	mark1 := format.KeyOf(ctok(name+"-m1", "x"))
	mark2 := format.KeyOf(ctok(name+"-m2", "x"))
	nonce := []byte("nonce-old")
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: oldTok, Nonce: nonce, Record: crec, Credential: format.Credential{1}, Mark: mark1, Expires: exp, User: user}))
	return continuationCase{
		user: user, oldKey: format.KeyOf(oldTok), newKey: format.KeyOf(newTok), oldMark: mark1, newNode: n2,
		cont: backend.NewSession{Token: newTok, Nonce: []byte("nonce-new"), Record: crec, Credential: format.Credential{2}, Mark: mark2,
			Expires: exp, User: user, Continues: &backend.Continued{Key: format.KeyOf(oldTok), Nonce: nonce}},
		end: backend.Ending{Key: format.KeyOf(oldTok), User: user, Until: exp, Mark: mark1},
	}
}

// A device that signs out while a mint continues its session (steps 1
// and 2 done, step 3 late) does not come back: the sign-out's last step
// fences the continuation's key, and the late write fails; or, if the
// write came first, the continuation is live and listed, and the
// engine's heir search (List after End) ends it. Either is what a single
// Redis does.
func testClusterContinuationAndSignOut(t *testing.T, c *storetest.Cluster) {
	ctx := context.Background()

	t.Run("the write comes after the sign-out: fenced", func(t *testing.T) {
		st := newClusterTestStore(t, c, Options{})
		cc := newContinuationCase(t, c, st, "fenced")
		_, err := st.mintIndex(ctx, cc.cont)
		require.NoError(t, err)
		require.NoError(t, st.mintContinue(ctx, cc.cont))
		require.NoError(t, st.End(ctx, cc.end))
		listed, err := backendtest.ListAll(ctx, st, cc.user)
		require.NoError(t, err)
		assert.Empty(t, listed, "nothing for the heir search to end")
		got, _ := st.Lookup(ctx, cc.newKey)
		assert.True(t, got.Found() && !got.Live() && !got.Ended, "the continuation's key is fenced")
		assert.ErrorIs(t, st.mintWrite(ctx, cc.cont), backend.ErrConflict, "so the late write fails")
		got, _ = st.Lookup(ctx, cc.newKey)
		assert.False(t, got.Live())

		// The client's retry: its session ended, it mints a new device,
		// replacing the fence it sees.
		fresh := cc.cont
		fresh.Continues, fresh.Nonce, fresh.Replace = nil, []byte("nonce-fresh"), got
		require.NoError(t, st.Mint(ctx, fresh))
		listed, err = backendtest.ListAll(ctx, st, cc.user)
		require.NoError(t, err)
		assert.Equal(t, []string{cc.newKey}, entryKeys(listed))
	})

	t.Run("the write comes before the sign-out's last step: live, listed for the heir search", func(t *testing.T) {
		st := newClusterTestStore(t, c, Options{})
		cc := newContinuationCase(t, c, st, "heir")
		_, err := st.mintIndex(ctx, cc.cont)
		require.NoError(t, err)
		require.NoError(t, st.mintContinue(ctx, cc.cont))
		require.NoError(t, st.mintWrite(ctx, cc.cont))
		require.NoError(t, st.End(ctx, cc.end))
		got, _ := st.Lookup(ctx, cc.newKey)
		assert.True(t, got.Live(), "the sign-out leaves the written continuation alone")
		listed, err := backendtest.ListAll(ctx, st, cc.user)
		require.NoError(t, err)
		assert.Equal(t, []string{cc.newKey}, entryKeys(listed), "the heir search finds it")
		require.NoError(t, st.mintFinish(ctx, cc.cont, nil))
	})

	t.Run("the sign-out marks the session before the mint continues it: a new device", func(t *testing.T) {
		st := newClusterTestStore(t, c, Options{})
		cc := newContinuationCase(t, c, st, "before")
		_, err := st.mintIndex(ctx, cc.cont)
		require.NoError(t, err)
		require.NoError(t, st.End(ctx, cc.end))
		assert.ErrorIs(t, st.Mint(ctx, cc.cont), backend.ErrNotContinued)
		fresh := cc.cont
		fresh.Continues = nil
		// The record the stopped attempt left made the end fence the key.
		fresh.Replace, _ = st.Lookup(ctx, cc.newKey)
		require.NoError(t, st.Mint(ctx, fresh))
		listed, err := backendtest.ListAll(ctx, st, cc.user)
		require.NoError(t, err)
		assert.Equal(t, []string{cc.newKey}, entryKeys(listed))
	})

	// The reviewer's reproducer (#17): the continuation's step 3 is held
	// back by CLIENT PAUSE WRITE on its node while the device signs out
	// (End, then List, as engine.SignOut does).
	t.Run("a paused write during the sign-out", func(t *testing.T) {
		st := newClusterTestStore(t, c, Options{})
		cc := newContinuationCase(t, c, st, "paused")
		_, err := cc.newNode.Do("CLIENT", "PAUSE", 700, "WRITE")
		require.NoError(t, err)
		minted := make(chan error, 1)
		go func() { minted <- st.Mint(ctx, cc.cont) }()
		// Steps 1 and 2 ran: the continued session is gone.
		require.Eventually(t, func() bool { s, _ := st.Lookup(ctx, cc.oldKey); return !s.Found() }, 5*time.Second, 5*time.Millisecond)

		require.NoError(t, st.End(ctx, cc.end))
		heirs, err := backendtest.ListAll(ctx, st, cc.user)
		require.NoError(t, err)
		mintErr := <-minted
		got, err := st.Lookup(ctx, cc.newKey)
		require.NoError(t, err)
		t.Logf("after the sign-out, the heir search listed %d; the continuation's mint: %v; its key live=%v", len(heirs), mintErr, got.Live())
		if mintErr == nil {
			assert.Equal(t, []string{cc.newKey}, entryKeys(heirs), "a continuation that went live is one the heir search ends")
		} else {
			assert.ErrorIs(t, mintErr, backend.ErrConflict)
			assert.False(t, got.Live(), "a fenced continuation is not live")
		}
		assert.False(t, len(heirs) == 0 && got.Live(), "a continuation of the signed-out device went live after the sign-out and its heir search saw nothing")
	})
}

// primaryWithReplica returns a primary of c that has a replica connected,
// and that replica; it fails t when none has.
func primaryWithReplica(t *testing.T, c *storetest.Cluster) (*storetest.Server, *storetest.Server) {
	t.Helper()
	for _, slot := range []int{0, 8000, 16000} {
		p := c.Primary(slot)
		if p == nil {
			continue
		}
		info, err := redis.String(p.Do("INFO", "replication"))
		if err == nil && strings.Contains(info, "connected_slaves:1") {
			return p, c.ReplicaOf(p)
		}
	}
	t.Fatal("no primary with a replica")
	return nil, nil
}

// A sign-out answered done survives a crash of its primary: its writes
// wait for a replica's acknowledgement (WAIT 1), and one that none gave
// in time is an error (503), for the client to retry. The reviewer's
// reproducer (#17) first: the replication link drops as the sign-out
// comes, and the client retries until it is answered; then a replica
// stalled as the sign-out comes; then the primary is killed and its
// replica promoted: no sign-out answered done is undone. It ends with a
// primary killed, so it runs last on its cluster.
func testClusterSignOutAndPrimaryCrash(t *testing.T, c *storetest.Cluster) {
	st := newClusterTestStore(t, c, Options{})
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	p, replica := primaryWithReplica(t, c)
	user := pickOn(c, p, func(i int) string { return fmt.Sprintf("p:ko%d", i) }, st.indexKey)
	var keys []string
	marks := map[string]string{}
	for i := 0; len(keys) < 24; i++ {
		tok := ctok(fmt.Sprintf("ko%d", i), "v")
		if c.Owner(st.sessionKey(format.KeyOf(tok))) != p {
			continue
		}
		mark := format.KeyOf(ctok(fmt.Sprintf("ko-mark%d", i), "x"))
		require.NoError(t, st.Mint(ctx, backend.NewSession{Token: tok, Nonce: []byte("n"), Record: crec, Credential: format.Credential{byte(i + 1)},
			Mark: mark, Expires: exp, User: user}))
		keys = append(keys, format.KeyOf(tok))
		marks[format.KeyOf(tok)] = mark
	}
	end := func(key string) error {
		return st.End(ctx, backend.Ending{Key: key, User: user, Until: exp, Mark: marks[key]})
	}

	// The cost with a healthy replica: every written node waits once.
	waits := func() int {
		n := 0
		for _, node := range c.Nodes {
			if info, err := redis.String(node.Do("INFO", "commandstats")); err == nil {
				for _, l := range strings.Split(info, "\r\n") {
					if v, ok := strings.CutPrefix(l, "cmdstat_wait:calls="); ok {
						calls, _ := strconv.Atoi(v[:strings.IndexByte(v, ',')])
						n += calls
					}
				}
			}
		}
		return n
	}
	acked := map[string]bool{}
	before, start := waits(), time.Now()
	for _, key := range keys[:16] {
		require.NoError(t, end(key))
		acked[key] = true
	}
	t.Logf("16 sign-outs with a healthy replica: %v each, %.1f WAITs each", (time.Since(start) / 16).Round(time.Microsecond),
		float64(waits()-before)/16)

	// The reviewer's case: the link drops; the client retries until done.
	killed, err := redis.Int(p.Do("CLIENT", "KILL", "TYPE", "replica"))
	require.NoError(t, err)
	require.Equal(t, 1, killed)
	start = time.Now()
	failed := 0
	for {
		err := end(keys[16])
		if err == nil {
			break
		}
		require.ErrorIs(t, err, store.ErrUnavailable)
		require.Less(t, time.Since(start), 10*time.Second, "the replica reconnects")
		failed++
		time.Sleep(20 * time.Millisecond)
	}
	acked[keys[16]] = true
	t.Logf("replication link dropped: the sign-out answered 503 %d times, then done after %v", failed, time.Since(start).Round(time.Millisecond))

	// A replica stalled: no sign-out is answered done; reads go on.
	resume := replica.Stall()
	start = time.Now()
	err = end(keys[17])
	t.Logf("replica stalled: the sign-out answered %v after %v", err, time.Since(start).Round(time.Millisecond))
	assert.ErrorIs(t, err, store.ErrUnavailable, "a sign-out no replica has is not answered done")
	if err == nil {
		acked[keys[17]] = true
	}
	got, err := st.Lookup(ctx, keys[18])
	assert.NoError(t, err, "reads go on")
	assert.True(t, got.Live())

	// The primary crashes; its replica resumes and is promoted.
	c.Kill(p)
	resume()
	took := c.WaitPrimary(replica)
	undone, lostUnacked := 0, 0
	for _, key := range keys[:18] {
		var s format.Stored
		require.Eventually(t, func() bool { s, err = st.Lookup(ctx, key); return err == nil }, 10*time.Second, 50*time.Millisecond)
		switch {
		case acked[key] && s.Live():
			undone++
		case !acked[key] && s.Live():
			lostUnacked++
		}
	}
	t.Logf("primary killed, replica promoted after %v: %d of %d sign-outs answered done undone; %d answered 503 undone (the client retries those)",
		took.Round(time.Millisecond), undone, len(acked), lostUnacked)
	assert.Zero(t, undone, "an acknowledged sign-out was undone by a primary crash")
	t.Logf("writes no replica acknowledged: %d", st.unacked.Load())
}
