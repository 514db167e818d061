// Package jwks validates JWTs locally against an issuer's published JSON
// Web Key Set: any OpenID Connect provider (Auth0, Okta, Google, Keycloak,
// Cognito...) or any issuer with a JWKS. New returns a provider.Provider;
// NewVerifier the verifier underneath, for providers with their own claim
// shapes (package para uses it for Para's JWTs).
//
// The rules, for every token: it must be a canonical JWS (unpadded
// base64url with zero trailing bits, a header without duplicate members),
// or it is malformed before any key lookup; the algorithm must be in an
// asymmetric allowlist ("none" and HMAC are never accepted); the key comes
// only from the configured key set ("jku", "x5u", "jwk" and "x5c" headers
// are ignored; keys whose "use" is not "sig" or whose "key_ops" lack
// "verify" are never used); the signature is checked exactly as RFC 7518
// defines it, before any claim is read; claims are read exactly as named,
// without duplicates; "exp" is required, the token is expired from exp +
// Leeway on, and "nbf" and "iat" get the same leeway; every time claim is
// a NumericDate between 1970 and 9999; "aud" must name a configured
// audience and "iss" the configured issuer.
//
// Keys are cached. A token naming an unknown key causes at most one
// refetch per RefreshInterval however many such tokens arrive, concurrent
// refetches are merged into one, and when the key set cannot be fetched
// the cached keys keep verifying. Such a token is invalid only when a
// fetch that completed after it arrived lacks its key; while refetching is
// throttled it is unavailable, with RetryAfter. A panic during a fetch
// fails that fetch, not the process. Tokens longer than 8 KiB or not
// shaped like a JWS are refused before any parsing.
package jwks
