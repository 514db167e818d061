package provider_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sessiongate/sessiongate/provider"
)

func TestValidSyntax(t *testing.T) {
	t.Parallel()
	good := []string{
		"eyJhbGciOiJIUzI1NiJ9.eyJpZCI6ImEifQ.HhMdOI-8vNVGmClrHJuMasfcOdJFaQ-VgxsH4zlgDug",
		"abc", "a+b/c==", "opaque_token-1~x", strings.Repeat("a", provider.MaxTokenSize),
	}
	bad := []string{
		"", "../etc/passwd", "a/../b", "a..b", ".abc", "/abc", "a./b", "a\x00b", "a b", "a=b", "=",
		"é", "a\nb", "a;b", strings.Repeat("a", provider.MaxTokenSize+1), strings.Repeat(".", 1<<20),
	}
	for _, s := range good {
		assert.True(t, provider.ValidSyntax(s), "%.40q", s)
	}
	for _, s := range bad {
		assert.False(t, provider.ValidSyntax(s), "%.40q", s)
	}
}

func FuzzValidSyntax(f *testing.F) {
	f.Add("a.b.c")
	f.Add("../x")
	f.Fuzz(func(t *testing.T, s string) {
		if provider.ValidSyntax(s) && (len(s) > provider.MaxTokenSize || strings.ContainsAny(s, " \x00\r\n\"';,") || strings.Contains(s, "..")) {
			t.Fatalf("accepted %q", s)
		}
	})
}

func FuzzUnverifiedClaims(f *testing.F) {
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJpZCI6ImEiLCJleHAiOjF9.sig")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("a.=.c")
	f.Add("a.e30.c")
	f.Fuzz(func(t *testing.T, token string) {
		claims, err := provider.UnverifiedClaims(token)
		if err == nil && (claims == nil || !provider.ValidSyntax(token)) {
			t.Fatalf("accepted %q without a JSON object payload", token)
		}
	})
}
