package useragent_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/useragent"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for ua, want := range map[string]struct{ browser, major, os, osMajor, device string }{
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.51 Safari/537.36":                {"Chrome", "99", "Mac OS X", "10", "Mac"},
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0":                                                        {"Firefox", "120", "Windows", "10", "Computer"},
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1": {"Safari", "17", "iOS", "17", "iPhone"},
		"Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1":          {"Safari", "16", "iOS", "16", "iPad"},
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36":                   {"Chrome", "119", "Android", "14", "Android phone"},
		"Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Safari/537.36":                          {"Chrome", "118", "Android", "13", "Android tablet"},
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.61":       {"Edge", "120", "Windows", "10", "Computer"},
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/105.0.0.0":                     {"Opera", "105", "Linux", "", "Computer"},
		"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36":                          {"Chrome", "119", "Chrome OS", "14541", "Computer"},
		"Go-http-client/1.1": {"Go-http-client", "1", "Other", "", "Other"},
		"curl/8.4.0":         {"curl", "8", "Other", "", "Other"},
		"":                   {"Other", "", "Other", "", "Other"},
	} {
		t.Run(ua, func(t *testing.T) {
			t.Parallel()
			got := useragent.Parse(ua)
			assert.Equal(t, want.browser, got.Family)
			assert.Equal(t, want.major, got.Major)
			assert.Equal(t, want.os, got.OS.Family)
			assert.Equal(t, want.osMajor, got.OS.Major)
			assert.Equal(t, want.device, got.Device.Family)
		})
	}
}

// The JSON is the Agnost shape, byte for byte as sessions have always
// embedded it as "device": every member present, in this order.
func TestTheJSONShapeIsStable(t *testing.T) {
	t.Parallel()
	for ua, want := range map[string]string{
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.51 Safari/537.36": `{"family":"Chrome","major":"99","minor":"0","patch":"4844","device":{"family":"Mac"},"os":{"family":"Mac OS X","major":"10","minor":"15","patch":"7"}}`,
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0":                                         `{"family":"Firefox","major":"120","minor":"0","patch":"","device":{"family":"Computer"},"os":{"family":"Windows","major":"10","minor":"0","patch":""}}`,
		"curl/8.4.0": `{"family":"curl","major":"8","minor":"4","patch":"0","device":{"family":"Other"},"os":{"family":"Other","major":"","minor":"","patch":""}}`,
		"":           `{"family":"Other","major":"","minor":"","patch":"","device":{"family":"Other"},"os":{"family":"Other","major":"","minor":"","patch":""}}`,
	} {
		t.Run(ua, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(useragent.Parse(ua))
			require.NoError(t, err)
			assert.Equal(t, want, string(b))
		})
	}
}

func TestParseReadsAtMost512Bytes(t *testing.T) {
	t.Parallel()
	pad := strings.Repeat("x", 500)
	assert.Equal(t, "Chrome", useragent.Parse(pad+" Chrome/120").Family, "within 512 bytes")
	assert.Equal(t, "Other", useragent.Parse(pad+pad+" Chrome/120").Family, "past 512 bytes")
}
