package useragent_test

import (
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/useragent"
)

// FuzzParse checks that Parse never panics, always names a family, and
// takes versions only from digits.
func FuzzParse(f *testing.F) {
	for _, ua := range []string{
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Version/17.1 Safari/604.1",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/119.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) Chrome/119.0.0.0 Safari/537.36",
		"curl/8.4.0",
		"",
		"\xff\xfe Edg/",
	} {
		f.Add(ua)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		got := useragent.Parse(ua)
		if got.Family == "" || got.OS.Family == "" || got.Device.Family == "" {
			t.Fatalf("empty family for %q: %+v", ua, got)
		}
		for _, v := range []string{got.Major, got.Minor, got.Patch, got.OS.Major, got.OS.Minor, got.OS.Patch} {
			if strings.Trim(v, "0123456789") != "" {
				t.Fatalf("version part %q for %q: %+v", v, ua, got)
			}
		}
	})
}
