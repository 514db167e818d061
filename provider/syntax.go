package provider

// MaxTokenSize is the longest frontend token sessiongate accepts: 8 KiB.
const MaxTokenSize = 8 << 10

// ValidSyntax reports whether token could be a bearer token at all: 1 to
// MaxTokenSize bytes of RFC 6750's b64token alphabet (letters, digits and
// "-._~+/", with "=" padding only at the end). Anything else is refused
// before any store read or upstream call. Path-like sequences ("..", "./",
// "/.", a leading "." or "/") are refused too: no token any provider issues
// has them, and they have no business reaching a log or an upstream URL.
// ValidSyntax runs in O(len(token)) with no allocation: one table lookup
// per byte, which a bearer request pays on every request.
func ValidSyntax(token string) bool {
	if len(token) == 0 || len(token) > MaxTokenSize {
		return false
	}
	// sep: the byte before was "." or "/" (or there was none: a leading
	// one is refused too).
	sep := true
	for i := 0; i < len(token); i++ {
		// Runs of plain bytes, eight at a time: most of any token.
		for ; i+8 <= len(token); i += 8 {
			b := token[i : i+8]
			if isPlain[b[0]]&isPlain[b[1]]&isPlain[b[2]]&isPlain[b[3]]&isPlain[b[4]]&isPlain[b[5]]&isPlain[b[6]]&isPlain[b[7]] == 0 {
				break
			}
			sep = false
		}
		if i == len(token) {
			break
		}
		switch syntaxClass[token[i]] {
		case plain:
			sep = false
		case separator:
			if sep {
				return false
			}
			sep = true
		case padding:
			// Only padding may follow, and not as the whole token.
			if i == 0 {
				return false
			}
			for _, c := range []byte(token[i:]) {
				if c != '=' {
					return false
				}
			}
			return true
		default:
			return false
		}
	}
	return true
}

// The classes of bytes ValidSyntax knows; any other is refused.
const (
	refused = iota
	plain
	separator // "." and "/": never two in a row, never first
	padding   // "=": only at the end
)

// isPlain is 1 for the plain bytes, 0 for any other.
var isPlain = func() (t [256]uint8) {
	for c := range 256 {
		if syntaxClass[c] == plain {
			t[c] = 1
		}
	}
	return t
}()

var syntaxClass = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '~', c == '+':
			t[c] = plain
		case c == '.', c == '/':
			t[c] = separator
		case c == '=':
			t[c] = padding
		}
	}
	return t
}()
