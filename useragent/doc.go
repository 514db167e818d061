// Package useragent parses a User-Agent header into the browser, operating
// system and device a person recognises, for display (a list of a user's
// signed-in devices); it never decides access.
//
// The result has the shape of the Agnost session example, and sessiongate
// embeds it in a session's JSON as "device":
//
//	ua := useragent.Parse(r.UserAgent())
//	fmt.Printf("%s %s on %s (%s)", ua.Family, ua.Major, ua.OS.Family, ua.Device.Family)
//	// Chrome 120 on Windows (Computer)
//
// Parsing never fails: what it does not recognise is "Other" or empty.
package useragent
