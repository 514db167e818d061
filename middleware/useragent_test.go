package middleware_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sessiongate/sessiongate/middleware"
)

func TestParseUserAgent(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ browser, major, os, osMajor, device string }{
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.51 Safari/537.36":                {"Chrome", "99", "Mac OS X", "10", "Mac"},
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0":                                                        {"Firefox", "120", "Windows", "10", "Computer"},
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1": {"Safari", "17", "iOS", "17", "iPhone"},
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36":                   {"Chrome", "119", "Android", "14", "Android phone"},
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.61":       {"Edge", "120", "Windows", "10", "Computer"},
		"curl/8.4.0": {"curl", "8", "Other", "", "Other"},
		"":           {"Other", "", "Other", "", "Other"},
	}
	for ua, want := range cases {
		got := middleware.ParseUserAgent(ua)
		assert.Equal(t, want.browser, got.Family, ua)
		assert.Equal(t, want.major, got.Major, ua)
		assert.Equal(t, want.os, got.OS.Family, ua)
		assert.Equal(t, want.osMajor, got.OS.Major, ua)
		assert.Equal(t, want.device, got.Device.Family, ua)
	}
}

func FuzzParseUserAgent(f *testing.F) {
	f.Add("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Version/17.1 Safari/604.1")
	f.Fuzz(func(t *testing.T, ua string) {
		got := middleware.ParseUserAgent(ua)
		if got.Family == "" || got.OS.Family == "" || got.Device.Family == "" {
			t.Fatalf("empty family for %q: %+v", ua, got)
		}
	})
}
