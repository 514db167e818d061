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

// So does a page of a user whose sessions all expire in the same
// millisecond, 10 or 10,000 of them, also after the entry its position
// names has ended: the page's place is a binary search.
func TestMemoryTiedListPageCost(t *testing.T) {
	t.Parallel()
	st := store.NewMemory()
	pair, afterEnd := backendtest.TiedListCost(t, st, 10_000, func() int64 { return store.EntriesRead(st) })
	if pair != 8 || afterEnd != 4 {
		t.Errorf("two pages of 4 read %d index entries, a page after an ended position %d, want 8 and 4", pair, afterEnd)
	}
}
