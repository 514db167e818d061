package backend

// IndexEntry is one entry of a user's index as a store reads it.
type IndexEntry struct {
	// Key is the session's store key, the index's member.
	Key string
	// Expires is its expiry in Unix milliseconds, the index's score.
	Expires int64
}

// Window is a List page of an index read in two ranges: ties, the keys
// whose expiry is exactly after.Expires, in the index's order (none for
// the zero Position), and rest, the entries that expire before it (every
// live one for the zero Position), in order, with at least limit+1 of them
// when there are that many. It returns the first limit (at least 1)
// entries that come after after, and whether more follow (then the last
// one's position is the page's next).
func Window(after Position, ties []string, rest []IndexEntry, limit int) (page []IndexEntry, more bool) {
	limit = max(limit, 1)
	page = make([]IndexEntry, 0, min(limit, len(ties)+len(rest)))
	for _, k := range ties {
		if !after.After(after.Expires, k) {
			continue // at or before the cursor: listed on an earlier page
		}
		if len(page) == limit {
			return page, true
		}
		page = append(page, IndexEntry{Key: k, Expires: after.Expires})
	}
	for _, e := range rest {
		if len(page) == limit {
			return page, true
		}
		page = append(page, e)
	}
	return page, false
}

// Next is the next Position of a page read by Window: the last entry's
// when more follow, else zero.
func Next(page []IndexEntry, more bool) Position {
	if !more || len(page) == 0 {
		return Position{}
	}
	last := page[len(page)-1]
	return Position{Expires: last.Expires, Key: last.Key}
}
