package main

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// getSignIns is GET /api/sign-ins with a session cookie.
func getSignIns(t *testing.T, base, session string) (int, []signIn) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/sign-ins", nil)
	req.AddCookie(&http.Cookie{Name: "session", Value: session})
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var body struct{ SignIns []signIn }
	json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body.SignIns
}

// TestSignInFeed: each user sees their own latest sign-ins, newest first,
// with the device named as a person would, this session flagged; at most
// signInsPerUser of them; nobody else's; and nothing without a session.
func TestSignInFeed(t *testing.T) {
	t.Parallel()
	srv := newTestApp(t, map[string]string{})
	mac := signInAt(t, srv.URL, "mia", chromeOnMac)
	for range signInsPerUser {
		signInAt(t, srv.URL, "mia", firefoxOnLinux)
	}
	noah := signInAt(t, srv.URL, "noah", chromeOnMac)
	last := signInAt(t, srv.URL, "mia", chromeOnMac)

	status, list := getSignIns(t, srv.URL, last)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, list, signInsPerUser, "bounded per user")
	assert.Equal(t, "Chrome on macOS", list[0].Device)
	assert.True(t, list[0].Current, "the newest is this session's")
	assert.Equal(t, "127.0.0.1", list[0].IP)
	assert.Equal(t, "plurality", list[0].Provider)
	for i, s := range list[1:] {
		assert.Equal(t, "Firefox on Linux", s.Device, "the first Mac sign-in fell off: %d", i)
		assert.False(t, s.Current)
		assert.False(t, s.Time.After(list[i].Time), "newest first")
	}
	status, list = getSignIns(t, srv.URL, mac)
	require.Equal(t, http.StatusOK, status)
	assert.False(t, list[0].Current, "seen from the first session, the newest is another's")

	status, list = getSignIns(t, srv.URL, noah)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, list, 1, "noah sees his own sign-in alone")
	assert.True(t, list[0].Current)

	status, _ = getSignIns(t, srv.URL, "")
	assert.Equal(t, http.StatusUnauthorized, status)
}

const (
	chromeOnMac    = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	firefoxOnLinux = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
)
