// Package para validates Para sign-ins on the server, in the two ways
// Para documents for servers that do not run its Node SDK:
//
//   - verification tokens (New): the frontend calls
//     para.getVerificationToken() and sends the result as a bearer token;
//     the backend asks POST {base}/sessions/verify with its secret API key;
//   - JWTs (NewJWT): the frontend calls issueJwt() and sends the JWT; the
//     backend verifies it locally against {base}/.well-known/jwks.json,
//     with "aud" equal to the API key's id.
//
// Provider.VerifyWallet checks that an address is one of the app's users'
// embedded wallets. Both providers name themselves "para"; with
// sessiongate's middleware either one turns a Para sign-in into a server
// session after one validation.
//
// Configuration names Para's environments, "BETA" or "PROD", or any base
// URL; tests point it at providertest.Para on loopback.
package para
