package guesslimit

// Clients returns the keys (see ClientKey) of the clients tracked, in no
// order: who has failed lately. For tests and diagnostics; nil for a nil
// Limiter.
func (l *Limiter) Clients() []string {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := make([]string, 0, len(l.clients))
	for k := range l.clients {
		keys = append(keys, k)
	}
	return keys
}

// Waiting returns how many validations of the client at ip hold or wait
// for its turn (see Turn). For tests and diagnostics; 0 for a nil Limiter.
func (l *Limiter) Waiting(ip string) int {
	if l == nil {
		return 0
	}
	key := ClientKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.clients[key]; c != nil {
		return c.waiting
	}
	return 0
}
