// Package provider defines what sessiongate needs from an identity provider:
// a Provider validates a frontend token once and returns the caller's
// Identity, or an error that callers classify with errors.Is:
//
//   - ErrInvalidToken: the token is malformed, rejected or expired (401).
//   - ErrUnavailable: the provider could not give an answer (503).
//
// It also holds the upstream HTTP hygiene every provider package shares
// (CheckURL, NewHTTPClient, Do, Panicked), the time rules every provider applies
// (DefaultLeeway, NumericDate, MaxTime) and Secret, a string type that
// never prints.
//
// One package per upstream lives below this one: provider/plurality, and
// provider/providertest for loopback fakes that speak each wire format.
package provider
