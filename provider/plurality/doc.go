// Package plurality validates Plurality social-connect tokens with
// Plurality's server-side session API:
//
//	GET {base}/user/validate
//	Authorization: Basic base64(clientId:clientSecret)
//	Content-Type: application/json
//
//	{"token": "<the token from PluralitySocialConnect.getLoginInfo()>"}
//
// A 2xx answer means the token is valid; 400, 401, 403 and 404 mean it is
// not; 429, 5xx, timeouts, connection errors and a 2xx whose body is not
// JSON mean Plurality is unavailable. The user id comes from the answer when
// it carries one, else from the token's own payload claim "id", which is
// decoded only after Plurality said the token is valid. The payload's "exp"
// caps the session and its "uniqueSessionId" becomes Identity.SessionID.
package plurality
