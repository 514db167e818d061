package backend

// IndexEntry is one entry of a user's index as a store reads it.
type IndexEntry struct {
	// Key is the session's store key, the index's member.
	Key string
	// Expires is its expiry in Unix milliseconds, the index's score.
	Expires int64
}

// Window cuts a List page from read, the live entries of an index that
// come after a position, in the index's order, read up to limit+1 of
// them (all of them when fewer follow): it returns the first limit (at
// least 1), and whether more follow (then the last one's position is
// the page's next). Reading one entry beyond the page is what tells a
// last page from a full one, so that a walk ends without an empty page.
func Window(read []IndexEntry, limit int) (page []IndexEntry, more bool) {
	limit = max(limit, 1)
	if len(read) > limit {
		return read[:limit], true
	}
	return read, false
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
