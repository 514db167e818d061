// Package introspect validates tokens with OAuth 2.0 Token Introspection
// (RFC 7662): for opaque access tokens, or any token whose issuer offers
// an introspection endpoint rather than a key set. The endpoint is asked
// once per token; sessiongate's middleware then serves the session
// without asking again.
package introspect
