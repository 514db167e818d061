package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/backend/backendtest"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/store"
)

func TestMemoryContract(t *testing.T) {
	t.Parallel()
	backendtest.Run(t, func(*testing.T) backend.Backend { return store.NewMemory() })
}

// A memory store keeps the first fingerprint claimed, as Redis does: two
// middlewares of one process (or a middleware and a Revoker) with
// different secrets on one store are told apart.
func TestMemoryCheckComparesSecrets(t *testing.T) {
	t.Parallel()
	st := store.NewMemory()
	ctx := context.Background()
	assert.NoError(t, st.Check(ctx, []byte("fingerprint-A"), false), "nothing to compare with: compared, not recorded")
	assert.NoError(t, st.Check(ctx, []byte("fingerprint-B"), true), "the first claim is recorded")
	assert.NoError(t, st.Check(ctx, []byte("fingerprint-B"), false))
	assert.NoError(t, st.Check(ctx, []byte("fingerprint-B"), true))
	assert.ErrorIs(t, st.Check(ctx, []byte("fingerprint-A"), false), store.ErrSecretMismatch)
	assert.ErrorIs(t, st.Check(ctx, []byte("fingerprint-A"), true), store.ErrSecretMismatch, "a later claim changes nothing")
}

// Find does not allocate.
func TestMemoryFindDoesNotAllocate(t *testing.T) {
	st := store.NewMemory()
	ctx := context.Background()
	tok := backendtest.Token("alloc", "v")
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: tok, Record: backendtest.Record, Data: []byte("d"), Expires: time.Now().Add(time.Hour), User: "p:u"}))
	allocs := testing.AllocsPerRun(100, func() {
		if _, found, _ := st.Find(tok); !found {
			t.Fatal("not found")
		}
	})
	assert.Zero(t, allocs)
}

// LookupAt judges the entry at the caller's reading of the clock, not at
// the store's own: live before its expiry, gone at it, whatever the time
// is now.
func TestMemoryLookupAtJudgesAtTheCallersTime(t *testing.T) {
	t.Parallel()
	st := store.NewMemory()
	ctx := context.Background()
	tok := backendtest.Token("at", "v")
	exp := time.Now().Add(time.Hour)
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: tok, Record: backendtest.Record, Data: []byte("d"), Expires: exp, User: "p:u"}))
	at := st.(backend.LookupAt)
	sel, _, ok := format.Split(tok)
	require.True(t, ok)
	key := sel.Key()

	got, err := at.LookupAt(ctx, key, exp.Add(-time.Second))
	require.NoError(t, err)
	assert.True(t, got.Live(), "a second before its expiry")
	got, err = at.LookupAt(ctx, key, exp)
	require.NoError(t, err)
	assert.False(t, got.Live() || got.Ended, "at its expiry: nothing")
	got, err = st.Lookup(ctx, key)
	require.NoError(t, err)
	assert.True(t, got.Live(), "Lookup judges at the store's clock: live now")
}
