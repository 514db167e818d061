package provider

// MaxTokenSize is the longest frontend token sessiongate accepts: 8 KiB.
const MaxTokenSize = 8 << 10

// ValidSyntax reports whether token could be a bearer token at all: 1 to
// MaxTokenSize bytes of RFC 6750's b64token alphabet (letters, digits and
// "-._~+/", with "=" padding only at the end). Anything else is refused
// before any store read or upstream call. Path-like sequences ("..", "./",
// "/.", a leading "." or "/") are refused too: no token any provider issues
// has them, and they have no business reaching a log or an upstream URL.
// ValidSyntax runs in O(len(token)) with no allocation.
func ValidSyntax(token string) bool {
	if len(token) == 0 || len(token) > MaxTokenSize {
		return false
	}
	if token[0] == '.' || token[0] == '/' {
		return false
	}
	padding := false
	for i := 0; i < len(token); i++ {
		c := token[i]
		if i > 0 && (c == '.' || c == '/') && (token[i-1] == '.' || token[i-1] == '/') {
			return false
		}
		switch {
		case c == '=':
			padding = true
			if i == 0 {
				return false
			}
		case padding:
			return false
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}
