package provider

import (
	"strings"
	"testing"
)

// referenceSyntax is ValidSyntax as it was first written, byte by byte:
// the table-driven one must answer as it does.
func referenceSyntax(token string) bool {
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

func FuzzValidSyntaxMatchesReference(f *testing.F) {
	for _, s := range []string{"a.b.c", "../x", "a=", "a==b", "=", ".a", "a/", "a./b", "a.=", "é", "a+b/c==", "~_-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidSyntax(s), referenceSyntax(s); got != want {
			t.Fatalf("ValidSyntax(%q) = %v, the reference says %v", s, got, want)
		}
	})
}

func BenchmarkValidSyntax(b *testing.B) {
	for _, n := range []int{1 << 10, 8 << 10} {
		token := "eyJhbGciOiJIUzI1NiJ9." + strings.Repeat("eyJpZCI6ImEifQ-_", n/16)[:n-64] + "." + strings.Repeat("HhMdOI-8vNVGmClr", 3)[:42]
		b.Run(map[int]string{1 << 10: "1KiB", 8 << 10: "8KiB"}[n], func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				if !ValidSyntax(token) {
					b.Fatal("refused")
				}
			}
		})
		b.Run("reference/"+map[int]string{1 << 10: "1KiB", 8 << 10: "8KiB"}[n], func(b *testing.B) {
			for b.Loop() {
				referenceSyntax(token)
			}
		})
	}
}
