package provider_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
)

func TestUnverifiedClaimsReadsOneSpellingExactly(t *testing.T) {
	t.Parallel()
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256"}`))
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	good := h + "." + enc(`{"aud":"k"}`) + ".c2lnbg" // "sign": 2 trailing bits in "g"
	claims, err := provider.UnverifiedClaims(good)
	require.NoError(t, err)
	assert.Equal(t, "k", claims["aud"])

	for name, token := range map[string]string{
		"trailing bits in the signature": h + "." + enc(`{"aud":"k"}`) + ".c2lnbh",
		"trailing bits in the payload":   h + "." + enc(`{"aud":"k"}`)[:15] + "1.c2lnbg",
		"padding":                        h + "." + enc(`{"aud":"k"}`) + ".c2lnbg==",
		"duplicate claim":                h + "." + enc(`{"aud":"x","aud":"k"}`) + ".c2lnbg",
		"duplicate header member":        enc(`{"alg":"RS256","alg":"none"}`) + "." + enc(`{"aud":"k"}`) + ".c2lnbg",
		"header not an object":           enc(`[]`) + "." + enc(`{"aud":"k"}`) + ".c2lnbg",
		"no header":                      "." + enc(`{"aud":"k"}`) + ".c2lnbg",
		"four parts":                     good + ".e30",
	} {
		_, err := provider.UnverifiedClaims(token)
		assert.Error(t, err, name)
	}
	require.True(t, strings.HasSuffix(enc(`{"aud":"k"}`), "0"), "the payload case relies on two trailing bits")

	upper, err := provider.UnverifiedClaims(h + "." + enc(`{"AUD":"k"}`) + ".c2lnbg")
	require.NoError(t, err)
	assert.False(t, provider.ClaimIn(upper, "aud", "k"), `"AUD" is not "aud"`)
}

func TestMultiRefusesOtherSpellingsBeforeAnyRoute(t *testing.T) {
	t.Parallel()
	jwt := &recorder{name: "para"}
	opaque := &recorder{name: "introspect"}
	m := provider.NewMulti(
		provider.Route{Match: provider.ClaimMatches("aud", "k"), Provider: jwt},
		provider.Route{Provider: opaque},
	)
	token := jwtWith(map[string]any{"aud": "k"}) // signature "c2ln": no trailing bits
	token = token[:len(token)-4] + "c2lnbg"
	_, err := m.Validate(context.Background(), token)
	require.NoError(t, err)
	require.EqualValues(t, 1, jwt.calls.Load())

	for _, spelling := range []string{token[:len(token)-1] + "h", token + "==", strings.Replace(token, ".", ".e30", 1)} {
		_, err := m.Validate(context.Background(), spelling)
		assert.ErrorIs(t, err, provider.ErrInvalidToken, spelling)
		assert.ErrorContains(t, err, "malformed", spelling)
	}
	assert.EqualValues(t, 1, jwt.calls.Load(), "a second spelling reached the JWT provider")
	assert.Zero(t, opaque.calls.Load(), "a second spelling fell through to the catch-all")

	for _, other := range []string{
		"v4.local.QAxIpVe-ECVNI1z4xQbm_qQYomyT3h8FtV8bxkz8pBJWkT8f7HtlOpbroPDEZUKop_vaglyp76CzYy375cHmKCW8e1CCkV0Lflu4GTDyXMqQdpZMM1E6OaoQW27gaRSvWBrR3IgbFIa0AkuUFw",
		"v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIn0",
		"opaque.with.dots",
	} {
		id, err := m.Validate(context.Background(), other)
		require.NoError(t, err, "an opaque format keeps working: %s", other)
		assert.Equal(t, "introspect", id.Provider)
	}
}

func TestMultiPassesTokenIDThrough(t *testing.T) {
	t.Parallel()
	p := &recorder{name: "x", tokenID: "jws:abc"}
	id, err := provider.NewMulti(provider.Route{Provider: p}).Validate(context.Background(), "opaque")
	require.NoError(t, err)
	assert.Equal(t, "jws:abc", id.TokenID)
}

func TestDoNeverRedirectsAValidationCall(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/start" {
			http.Redirect(w, r, "/next", http.StatusFound)
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	client := provider.NewHTTPClient(0)
	for name, req := range map[string]func() *http.Request{
		"GET with a body": func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, srv.URL+"/start", strings.NewReader(`{"token":"t"}`))
			return r
		},
		"POST": func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, srv.URL+"/start", strings.NewReader(`token=t`))
			return r
		},
	} {
		hits.Store(0)
		_, _, err := provider.Do(client, req(), "p")
		assert.ErrorIs(t, err, provider.ErrUnavailable, name)
		assert.EqualValues(t, 1, hits.Load(), "%s: the redirect was followed", name)
	}
	hits.Store(0)
	r, _ := http.NewRequest(http.MethodGet, srv.URL+"/start", nil)
	resp, body, err := provider.Do(client, r, "p")
	require.NoError(t, err, "a bodiless GET follows a same-host redirect")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, `{}`, string(body))
	assert.EqualValues(t, 2, hits.Load())
}

type panicTransport struct{}

func (panicTransport) RoundTrip(*http.Request) (*http.Response, error) { panic("transport bug") }

func TestDoTurnsAPanicIntoUnavailable(t *testing.T) {
	t.Parallel()
	r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/", nil)
	_, _, err := provider.Do(&http.Client{Transport: panicTransport{}}, r, "p")
	var ue *provider.UnavailableError
	require.True(t, errors.As(err, &ue))
	assert.Contains(t, ue.Error(), "transport bug")
	assert.Contains(t, ue.Error(), "goroutine")
}
