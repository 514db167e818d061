package provider

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/sessiongate/sessiongate/provider/internal/strict"
)

// Route sends the tokens Match accepts to Provider.
type Route struct {
	// Match reports whether token is one for Provider. It sees tokens that
	// passed ValidSyntax and nothing else, so it must not trust them: it
	// only chooses who verifies. A nil Match accepts every token and is
	// allowed only on the last route.
	Match func(token string) bool

	// Provider validates the tokens Match accepted.
	Provider Provider
}

// Multi is a Provider that accepts tokens from several providers. The rule
// is: each token goes to the first route whose Match accepts it, and to
// that provider alone. A rejection there is final: a token is never
// offered to a second provider, because sending one provider's token to
// another would hand a credential to a party it was not issued for. A
// token no route accepts is invalid, and no upstream is called.
//
// Sessions minted through Multi record the provider that validated the
// token, so sessions, indexes and RevokeUser stay per provider. Multi is
// safe for concurrent use when its providers are.
type Multi struct {
	routes []Route
	// names are the names its sessions may record: its providers', and
	// those of a Multi among them.
	names []string
	name  string
}

// NewMulti returns a Multi over routes, tried in order. NewMulti panics if
// there are no routes, a route has no Provider, a nil Match is not last,
// two providers share a Name (their sessions could not be told apart; the
// providers of a *Multi given as a route count one by one, but a Provider
// of yours that wraps a Multi counts by its own Name), or a Name holds a
// ':' (see Provider.Name).
func NewMulti(routes ...Route) *Multi {
	if len(routes) == 0 {
		panic("sessiongate/provider: NewMulti needs at least one route")
	}
	var names []string // every provider's, a nested Multi's own included
	for i, r := range routes {
		if r.Provider == nil {
			panic(fmt.Sprintf("sessiongate/provider: NewMulti route %d has no Provider", i))
		}
		if r.Match == nil && i != len(routes)-1 {
			panic(fmt.Sprintf("sessiongate/provider: NewMulti route %d (%s) has no Match but is not the last", i, r.Provider.Name()))
		}
		own := []string{r.Provider.Name()}
		if inner, ok := r.Provider.(*Multi); ok {
			own = inner.names // its sessions record these, never its Name
		}
		for _, name := range own {
			if strings.Contains(name, ":") {
				panic(fmt.Sprintf("sessiongate/provider: NewMulti route %d's provider name %q holds a ':'", i, name))
			}
			if slices.Contains(names, name) {
				panic(fmt.Sprintf("sessiongate/provider: NewMulti has two providers named %q", name))
			}
			names = append(names, name)
		}
	}
	return &Multi{routes: slices.Clone(routes), names: names, name: strings.Join(names, "|")}
}

// Name returns the routes' provider names joined by "|", such as
// "plurality|para". Sessions record the one provider that validated them,
// never this name.
func (m *Multi) Name() string { return m.name }

// Validate hands token to the first route that matches it and returns that
// provider's answer (TokenID included, unchanged), with Identity.Provider
// set to its Name. A token shaped like a JWS (two dots, a header that
// starts with "{") whose parts are not canonical unpadded base64url is
// refused as malformed before any route sees it: it is a second spelling
// of some token, and a catch-all route must not carry it upstream.
func (m *Multi) Validate(ctx context.Context, token string) (*Identity, error) {
	if !ValidSyntax(token) || strict.NonCanonicalJWS(token) {
		return nil, &InvalidTokenError{Provider: m.name, Reason: "malformed"}
	}
	for _, r := range m.routes {
		if r.Match != nil && !r.Match(token) {
			continue
		}
		id, err := r.Provider.Validate(ctx, token)
		if err != nil {
			return nil, err
		}
		if id.Provider == "" {
			id.Provider = r.Provider.Name()
		}
		return id, nil
	}
	return nil, &InvalidTokenError{Provider: m.name, Reason: "no configured provider accepts this kind of token"}
}

// ClaimMatches returns a Route.Match that accepts JWTs whose payload has
// claim, equal to one of values when any are given (for an array claim
// such as "aud", any element equal to one of values). The signature is not
// checked: the chosen provider does that.
//
// For example ClaimMatches("aud", apiKeyID) picks Para JWTs, and
// ClaimMatches("iss", "https://accounts.google.com") an OIDC issuer's.
func ClaimMatches(claim string, values ...string) func(token string) bool {
	values = slices.Clone(values)
	return func(token string) bool {
		claims, err := UnverifiedClaims(token)
		if err != nil {
			return false
		}
		return ClaimIn(claims, claim, values...)
	}
}
