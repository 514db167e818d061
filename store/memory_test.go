package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/backend/backendtest"
	"github.com/sessiongate/sessiongate/store"
)

func TestMemoryContract(t *testing.T) {
	t.Parallel()
	backendtest.Run(t, func(*testing.T) backend.Backend { return store.NewMemory() })
}

// A memory store belongs to one process, and so does its secret: any
// fingerprint passes, and none is kept.
func TestMemoryCheckAlwaysSucceeds(t *testing.T) {
	t.Parallel()
	st := store.NewMemory()
	ctx := context.Background()
	for _, fingerprint := range [][]byte{[]byte("fingerprint-A"), []byte("fingerprint-B"), nil} {
		assert.NoError(t, st.Check(ctx, fingerprint, true))
		assert.NoError(t, st.Check(ctx, fingerprint, false))
	}
}

// FindCtx, the read of every request with a session, does not allocate.
func TestMemoryFindDoesNotAllocate(t *testing.T) {
	st := store.NewMemory()
	ctx := context.Background()
	tok := backendtest.Token("alloc", "v")
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: tok, Record: backendtest.Record, Data: []byte("d"), Expires: time.Now().Add(time.Hour), User: "p:u"}))
	allocs := testing.AllocsPerRun(100, func() {
		if _, found, _ := st.FindCtx(ctx, tok); !found {
			t.Fatal("not found")
		}
	})
	assert.Zero(t, allocs)
}
