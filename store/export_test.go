package store

// EntriesRead returns how many index entries st (a memory store) has
// read in List: its listing work, for the tests.
func EntriesRead(st Store) int64 { return st.(*memory).entriesRead.Load() }
