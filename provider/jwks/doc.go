// Package jwks validates JWTs locally against an issuer's published JSON
// Web Key Set: any OpenID Connect provider (Auth0, Okta, Google, Keycloak,
// Cognito...) or any issuer with a JWKS. New returns a provider.Provider;
// NewVerifier the verifier underneath, for providers with their own claim
// shapes (package para uses it for Para's JWTs).
//
// The rules, for every token: the algorithm must be in an asymmetric
// allowlist ("none" and HMAC are never accepted); the key comes only from
// the configured key set ("jku", "x5u", "jwk" and "x5c" headers are
// ignored); the signature is checked before any claim is read; "exp" is
// required and "exp", "nbf" and "iat" are checked with a small leeway;
// "aud" must name a configured audience and "iss" the configured issuer.
//
// Keys are cached. A token naming an unknown key causes at most one
// refetch per RefreshInterval however many such tokens arrive, concurrent
// refetches are merged into one, and when the key set cannot be fetched
// the cached keys keep verifying. Tokens longer than 8 KiB or not shaped
// like a JWS are refused before any parsing.
package jwks
