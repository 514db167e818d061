package redisstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/format"
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
		listed, err := st.List(ctx, cc.user)
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
		listed, err = st.List(ctx, cc.user)
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
		listed, err := st.List(ctx, cc.user)
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
		listed, err := st.List(ctx, cc.user)
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
		heirs, err := st.List(ctx, cc.user)
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
