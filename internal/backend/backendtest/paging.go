package backendtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/format"
)

// ListAll returns every live session of user's index, read a page of
// 1,000 at a time: for tests that look at a whole index.
func ListAll(ctx context.Context, st backend.Backend, user string) ([]backend.Entry, error) {
	return listPages(ctx, st, user, 1000)
}

// listAll is ListAll two entries at a time: the contract's tests read
// every index through pages.
func listAll(ctx context.Context, st backend.Backend, user string) ([]backend.Entry, error) {
	return listPages(ctx, st, user, 2)
}

func listPages(ctx context.Context, st backend.Backend, user string, limit int) ([]backend.Entry, error) {
	var (
		all   []backend.Entry
		after backend.Position
	)
	for range 100_000 {
		page, next, err := st.List(ctx, user, after, limit)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if next.IsZero() {
			return all, nil
		}
		after = next
	}
	return nil, fmt.Errorf("backendtest: the listing of %s does not end", user)
}

// walk reads every page of user's index with limit, and returns the keys
// in the order listed and the number of pages.
func walk(t *testing.T, st backend.Backend, user string, limit int) (keys []string, pages int) {
	t.Helper()
	var after backend.Position
	for {
		page, next, err := st.List(context.Background(), user, after, limit)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), max(limit, 1), "a page holds at most limit entries")
		pages++
		for _, e := range page {
			keys = append(keys, e.Key)
		}
		if next.IsZero() {
			return keys, pages
		}
		require.True(t, after.IsZero() || after.After(next.Expires, next.Key), "each next comes after the last")
		after = next
	}
}

// testPaging: List reads a user's index a page at a time, latest expiry
// first, then by key, last first (ties in expiry included); every walk
// lists each session once, whatever the page size; a position whose entry
// has gone still places the next page.
func testPaging(t *testing.T, st backend.Backend) {
	ctx := context.Background()
	user := "p:" + t.Name()
	base := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	type minted struct {
		key string
		exp time.Time
	}
	var all []minted
	mint := func(name string, exp time.Time) {
		tok := Token(name, "v")
		require.NoError(t, st.Mint(ctx, backend.NewSession{Token: tok, Record: Record, Data: []byte(name), Expires: exp, User: user}))
		all = append(all, minted{format.KeyOf(tok), exp})
	}
	for i := range 7 {
		mint(fmt.Sprintf("s%d", i), base.Add(time.Duration(i)*time.Second))
	}
	for i := range 4 { // four sessions expiring in the same millisecond
		mint(fmt.Sprintf("tie%d", i), base.Add(3500*time.Millisecond))
	}
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: Token("other", "v"), Record: Record, Expires: base, User: user + "-other"}))
	slices.SortFunc(all, func(a, b minted) int {
		if c := b.exp.Compare(a.exp); c != 0 {
			return c
		}
		return strings.Compare(b.key, a.key)
	})
	var want []string
	for _, m := range all {
		want = append(want, m.key)
	}

	for _, limit := range []int{1, 2, 3, 4, 5, 10, 11, 12, 200} {
		got, pages := walk(t, st, user, limit)
		assert.Equal(t, want, got, "limit %d: in order, each once", limit)
		assert.Equal(t, max(1, (len(want)+limit-1)/limit), pages, "limit %d: no empty page at the end", limit)
	}
	page, next, err := st.List(ctx, user, backend.Position{}, 0)
	require.NoError(t, err)
	assert.Len(t, page, 1, "a limit below 1 reads one")
	assert.Equal(t, want[0], next.Key)
	page, next, err = st.List(ctx, "p:nobody", backend.Position{}, 10)
	require.NoError(t, err)
	assert.Empty(t, page)
	assert.True(t, next.IsZero(), "a user without sessions has one empty page")

	// Stop after each of the tied entries, end it, and go on: the rest
	// comes once, in order.
	for i := 2; i <= 5; i++ {
		page, next, err := st.List(ctx, user, backend.Position{}, i)
		require.NoError(t, err)
		require.Len(t, page, i)
		require.Equal(t, want[i-1], next.Key)
		rest, _, err := st.List(ctx, user, next, 100)
		require.NoError(t, err)
		assert.Equal(t, want[i:], entryKeys(rest), "after %d entries", i)
	}
	page, next, err = st.List(ctx, user, backend.Position{}, 4)
	require.NoError(t, err)
	require.Equal(t, want[3], next.Key, "the page ends inside the ties")
	require.NoError(t, st.End(ctx, backend.Ending{Key: want[3], User: user, Until: base}))
	rest, _, err := st.List(ctx, user, next, 100)
	require.NoError(t, err)
	assert.Equal(t, want[4:], entryKeys(rest), "a position whose entry has gone still places the page")

	// The entry of a session ended without its index (no User) is read
	// (it counts toward the limit) but not listed, and leaves the index.
	require.NoError(t, st.End(ctx, backend.Ending{Key: want[0], Until: base}))
	page, next, err = st.List(ctx, user, backend.Position{}, 2)
	require.NoError(t, err)
	assert.Equal(t, []string{want[1]}, entryKeys(page))
	assert.Equal(t, want[1], next.Key, "the page ends at the last entry read")
	got, _ := walk(t, st, user, 3)
	assert.Equal(t, append([]string{want[1], want[2]}, want[4:]...), got)
	others, _, err := st.List(ctx, user+"-other", backend.Position{}, 100)
	require.NoError(t, err)
	assert.Len(t, others, 1, "another user's index is apart")
}

// testPagingUnderChurn: a walk of every page, while sessions of the same
// user are minted and ended, lists no key twice, and every session that
// lived throughout.
func testPagingUnderChurn(t *testing.T, st backend.Backend) {
	ctx := context.Background()
	user := "p:" + t.Name()
	base := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	stable := map[string]bool{}
	for i := range 40 {
		tok := Token(fmt.Sprintf("stable%d", i), "v")
		// Pairs share an expiry: ties at page edges.
		require.NoError(t, st.Mint(ctx, backend.NewSession{Token: tok, Record: Record, Expires: base.Add(time.Duration(i/2) * time.Second), User: user}))
		stable[format.KeyOf(tok)] = true
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tok := Token(fmt.Sprintf("churn%d", i), "v")
			exp := base.Add(time.Duration(i%25) * time.Second) // among the stable ones
			if err := st.Mint(ctx, backend.NewSession{Token: tok, Record: Record, Expires: exp, User: user}); err != nil {
				t.Errorf("mint: %v", err)
				return
			}
			if i > 0 { // end the one before: the index shrinks and grows, by one
				prev := Token(fmt.Sprintf("churn%d", i-1), "v")
				if err := st.End(ctx, backend.Ending{Key: format.KeyOf(prev), User: user, Until: base}); err != nil {
					t.Errorf("end: %v", err)
					return
				}
			}
		}
	}()
	for round := range 5 {
		seen := map[string]int{}
		keys, pages := walk(t, st, user, 3)
		for _, k := range keys {
			seen[k]++
		}
		for k, n := range seen {
			assert.Equal(t, 1, n, "round %d: listed once", round)
			_ = k
		}
		for k := range stable {
			assert.Equal(t, 1, seen[k], "round %d: a session that lived throughout is listed", round)
		}
		t.Logf("round %d: %d pages, %d keys listed, %d of them minted during the walk", round, pages, len(keys), len(keys)-len(stable))
	}
	close(stop)
	wg.Wait()
}

// testPagingTies: a user's 2,000 sessions that all expire in the same
// millisecond (tokens issued in one second with one exp) are listed in
// pages of 7, each exactly once, in the index's order (member
// descending); and again when, every few pages, the entry the position
// names is ended before the next page is read.
func testPagingTies(t *testing.T, st backend.Backend) {
	ctx := context.Background()
	user := "p:" + t.Name()
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	const n = 2000
	want := mintMany(t, st, user, "tie", n, func(int) time.Time { return exp })
	slices.Sort(want)
	slices.Reverse(want)

	got, pages := walk(t, st, user, 7)
	assert.Equal(t, want, got, "in order, each once")
	assert.Equal(t, (n+6)/7, pages)

	// Every fifth page, end the entry the position names (listed last)
	// before reading on: the next page starts right after its place.
	var (
		after backend.Position
		ended int
	)
	got = got[:0]
	for pages = 1; ; pages++ {
		page, next, err := st.List(ctx, user, after, 7)
		require.NoError(t, err)
		got = append(got, entryKeys(page)...)
		if next.IsZero() {
			break
		}
		if pages%5 == 0 {
			require.NoError(t, st.End(ctx, backend.Ending{Key: next.Key, User: user, Until: exp}))
			ended++
		}
		after = next
	}
	assert.Equal(t, want, got, "a position whose entry has ended still places the next page")
	rest, err := ListAll(ctx, st, user)
	require.NoError(t, err)
	assert.Len(t, rest, n-ended)
}

// mintMany mints n sessions of user, on 8 goroutines, with tokens named
// prefix and a number (at most 16 bytes in all) and expiry exp(i) for
// the i-th, and returns their keys.
func mintMany(t *testing.T, st backend.Backend, user, prefix string, n int, exp func(i int) time.Time) []string {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	keys := make([]string, n)
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				tok := Token(fmt.Sprintf("%s%07d", prefix, i), "v")
				keys[i] = format.KeyOf(tok)
				if err := st.Mint(ctx, backend.NewSession{Token: tok, Record: Record, Data: []byte("data"), Expires: exp(i), User: user}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	require.NoError(t, <-errs)
	return keys
}

// ListCost mints few sessions (10) for one user and many for another
// (the same sizes, distinct expiries), reads two pages of each (the
// first, and the one after it) and asserts that work, the store's work as
// the caller counts it (entries read, bytes exchanged with Redis...),
// grew by the same amount for both: a page costs the same whatever the
// number of the user's sessions. It returns the work of the pair of pages.
// Each reading is repeated and the least taken, so that a count another
// client adds now and then (a health check) does not tell.
func ListCost(t *testing.T, st backend.Backend, many int, work func() int64) int64 {
	t.Helper()
	base := time.Now().Add(time.Hour).Truncate(time.Second)
	// Distinct expiries, 13 digits of ms each.
	exp := func(i int) time.Time { return base.Add(time.Duration(i) * time.Millisecond) }
	few, lots := "p:cost-few", "p:cost-big"
	mintMany(t, st, few, "few", 10, exp)
	start := time.Now()
	mintMany(t, st, lots, "big", many, exp)
	t.Logf("minted %d sessions of one user in %v", many, time.Since(start).Round(time.Millisecond))
	small, big := twoPagesCost(t, st, few, work), twoPagesCost(t, st, lots, work)
	t.Logf("two pages of 4: work %d for a user with 10 sessions, %d for one with %d", small, big, many)
	assert.Equal(t, small, big, "a page costs the same for 10 or %d sessions", many)
	return big
}

// TiedListCost is ListCost for users whose sessions all expire in the
// same millisecond (tokens issued in one second with one exp): two pages
// cost the same for 10 or many such sessions, and so does the second
// page alone after the entry its position names has ended (its place is
// then found without it). It returns the work of the pair of pages and
// that of the second page after the end.
func TiedListCost(t *testing.T, st backend.Backend, many int, work func() int64) (pair, afterEnd int64) {
	t.Helper()
	ctx := context.Background()
	at := time.Now().Add(time.Hour).Truncate(time.Second)
	exp := func(int) time.Time { return at }
	few, lots := "p:tied-few", "p:tied-big"
	mintMany(t, st, few, "tfew", 10, exp)
	start := time.Now()
	mintMany(t, st, lots, "tbig", many, exp)
	t.Logf("minted %d sessions of one user, one expiry, in %v", many, time.Since(start).Round(time.Millisecond))
	small, big := twoPagesCost(t, st, few, work), twoPagesCost(t, st, lots, work)
	t.Logf("two pages of 4, one expiry: work %d for a user with 10 sessions, %d for one with %d", small, big, many)
	assert.Equal(t, small, big, "a page costs the same for 10 or %d sessions of one expiry", many)

	ended := func(user string) int64 {
		page, next, err := st.List(ctx, user, backend.Position{}, 4)
		require.NoError(t, err)
		require.Len(t, page, 4)
		require.NoError(t, st.End(ctx, backend.Ending{Key: next.Key, User: user, Until: at}))
		least := int64(-1)
		for range 5 {
			w := work()
			page, _, err := st.List(ctx, user, next, 4)
			require.NoError(t, err)
			require.Len(t, page, 4)
			if d := work() - w; least < 0 || d < least {
				least = d
			}
		}
		return least
	}
	smallEnd, bigEnd := ended(few), ended(lots)
	t.Logf("page 2 of 4 after its position's entry ended, one expiry: work %d for 10 sessions, %d for %d", smallEnd, bigEnd, many)
	assert.Equal(t, smallEnd, bigEnd, "a page after an ended position costs the same for 10 or %d sessions of one expiry", many)
	return big, bigEnd
}

// twoPagesCost returns the least work, of 5 readings, of the first two
// pages of 4 of user's index.
func twoPagesCost(t *testing.T, st backend.Backend, user string, work func() int64) int64 {
	t.Helper()
	ctx := context.Background()
	least := int64(-1)
	for range 5 {
		w := work()
		page, next, err := st.List(ctx, user, backend.Position{}, 4)
		require.NoError(t, err)
		require.Len(t, page, 4)
		page, next, err = st.List(ctx, user, next, 4)
		require.NoError(t, err)
		require.Len(t, page, 4)
		require.False(t, next.IsZero())
		if d := work() - w; least < 0 || d < least {
			least = d
		}
	}
	return least
}

// entryKeys returns the keys of entries, in order.
func entryKeys(entries []backend.Entry) []string {
	out := []string{}
	for _, e := range entries {
		out = append(out, e.Key)
	}
	return out
}
