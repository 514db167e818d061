// Package providertest runs loopback fakes of sessiongate's upstream
// identity providers: Plurality's validate API, Para's verify, wallet and
// JWKS endpoints, a generic OpenID Connect issuer (discovery and JWKS) and
// an RFC 7662 introspection endpoint. Each fake speaks its provider's
// documented wire format, issues tokens, validates them, counts the calls it receives and
// can be switched into failure modes (down, slow, an error status, garbage,
// an oversized answer), so that tests and offline demos exercise the real
// provider packages end to end without a network. The plumbing they share
// (the loopback server, the call count, the last request, the fault) is
// Server, which each fake embeds.
//
// The fakes use net/http/httptest but not testing: the example app's dev
// mode runs one.
package providertest
