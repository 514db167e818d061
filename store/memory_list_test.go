package store_test

import (
	"testing"

	"github.com/sessiongate/sessiongate/internal/backend/backendtest"
	"github.com/sessiongate/sessiongate/store"
)

// A page of a user's sessions reads as many index entries for a user
// with 10 sessions as for one with 10,000: the index is kept in order.
func TestMemoryListPageCost(t *testing.T) {
	t.Parallel()
	st := store.NewMemory()
	work := backendtest.ListCost(t, st, 10_000, func() int64 { return store.EntriesRead(st) })
	// Each page of 4 reads its 4 entries and no more.
	if work != 8 {
		t.Errorf("two pages of 4 read %d index entries, want 8", work)
	}
}
