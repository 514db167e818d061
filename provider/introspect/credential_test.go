package introspect_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/introspect"
	"github.com/sessiongate/sessiongate/provider/providertest"
)

// An upstream that decodes tokens leniently accepts two spellings of one
// token; both answers name the same jti, so both are one credential.
func TestTokenIDIsTheAnswersJTI(t *testing.T) {
	t.Parallel()
	fake, p := newProvider(t, nil)
	spelling1 := fake.Issue("ada", time.Hour, map[string]any{"jti": "tok-7"})
	spelling2 := fake.Issue("ada", time.Hour, map[string]any{"jti": "tok-7"})
	a, err := validate(t, p, spelling1)
	require.NoError(t, err)
	b, err := validate(t, p, spelling2)
	require.NoError(t, err)
	assert.Equal(t, "jti:tok-7", a.TokenID)
	assert.Equal(t, a.TokenID, b.TokenID)

	for name, extra := range map[string]map[string]any{
		"no jti":        nil,
		"empty jti":     {"jti": ""},
		"numeric jti":   {"jti": 7},
		"oversized jti": {"jti": strings.Repeat("j", 257)},
		"JTI":           {"JTI": "tok-7"},
	} {
		id, err := validate(t, p, fake.Issue("ada", time.Hour, extra))
		require.NoError(t, err, name)
		assert.Empty(t, id.TokenID, "%s: only the exact token string identifies it", name)
	}
}

func TestNonCanonicalJWSIsRefusedBeforeTheCall(t *testing.T) {
	t.Parallel()
	fake, p := newProvider(t, nil)
	// A canonical JWS and a PASETO-style opaque token are passed on.
	for _, token := range []string{
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbg",
		"v4.local.QAxIpVe-ECVNI1z4xQbm_qQYomyT3h8FtV8bxkz8pBJWkT8f7HtlOpbroPDEZUKop_vaglyp76CzYy375cHmKCW8e1CCkV0Lflu4GTDyXMqQdpZMM1E6OaoQW27gaRSvWBrR3IgbFIa0AkuUFw.UGFyYWdvbiBJbml0aWF0aXZlIEVudGVycHJpc2Vz",
		"opaque-token-1",
	} {
		_, err := validate(t, p, token)
		assert.ErrorIs(t, err, provider.ErrInvalidToken, "unknown upstream: inactive")
		assert.ErrorContains(t, err, "inactive", "%.20s... reached the endpoint", token)
	}
	calls := fake.Calls()
	for _, token := range []string{
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbh", // trailing bits set
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn1.c2lnbg",
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0=.c2lnbg",
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbg==",
	} {
		_, err := validate(t, p, token)
		assert.ErrorIs(t, err, provider.ErrInvalidToken, token)
		assert.ErrorContains(t, err, "malformed", token)
	}
	assert.Equal(t, calls, fake.Calls(), "a non-canonical JWS reached the endpoint")
}

func TestTimesUseTheLeewayAndAreRangeChecked(t *testing.T) {
	t.Parallel()
	now := time.Now().Truncate(time.Second)
	for name, tc := range map[string]struct {
		extra map[string]any
		want  error
	}{
		"exp within the leeway":     {map[string]any{"exp": now.Add(-9 * time.Second).Unix()}, nil},
		"exp at exp plus leeway":    {map[string]any{"exp": now.Add(-10 * time.Second).Unix()}, provider.ErrInvalidToken},
		"nbf within the leeway":     {map[string]any{"nbf": now.Add(10 * time.Second).Unix()}, nil},
		"nbf beyond the leeway":     {map[string]any{"nbf": now.Add(11 * time.Second).Unix()}, provider.ErrInvalidToken},
		"exp 1e16":                  {map[string]any{"exp": 1e16}, provider.ErrInvalidToken},
		"exp negative":              {map[string]any{"exp": -1}, provider.ErrInvalidToken},
		"exp a string":              {map[string]any{"exp": "soon"}, provider.ErrInvalidToken},
		"iat 1e16":                  {map[string]any{"iat": 1e16}, provider.ErrInvalidToken},
		"nbf 1e300":                 {map[string]any{"nbf": 1e300}, provider.ErrInvalidToken},
		"EXP is not exp (no exp)":   {map[string]any{"exp": nil, "EXP": now.Add(-time.Hour).Unix()}, provider.ErrInvalidToken},
		"Exp does not override exp": {map[string]any{"exp": now.Add(-time.Hour).Unix(), "Exp": now.Add(time.Hour).Unix()}, provider.ErrInvalidToken},
	} {
		fake, p := newProvider(t, func(c *introspect.Config) {
			c.Leeway = 10 * time.Second
			c.Now = func() time.Time { return now }
		})
		id, err := validate(t, p, fake.Issue("ada", time.Hour, tc.extra))
		if tc.want == nil {
			require.NoError(t, err, name)
			if exp, ok := tc.extra["exp"].(int64); ok {
				assert.Equal(t, time.Unix(exp, 0).Add(10*time.Second), id.Expiry.Local(), name)
			}
			continue
		}
		assert.ErrorIs(t, err, tc.want, name)
		assert.NotErrorIs(t, err, provider.ErrUnavailable, name)
	}
}

func TestDuplicateMembersInTheAnswerAreUnavailable(t *testing.T) {
	t.Parallel()
	fake, p := newProvider(t, nil)
	token := fake.Issue("ada", time.Hour, nil)
	for _, body := range []string{
		`{"active": false, "sub": "ada", "active": true}`,
		`{"active": true, "sub": "mallory", "sub": "ada"}`,
		`{"active": true, "sub": "ada", "ext": {"a": 1, "a": 2}}`,
	} {
		fake.SetFault(providertest.Fault{Body: []byte(body)})
		_, err := validate(t, p, token)
		assert.ErrorIs(t, err, provider.ErrUnavailable, body)
		assert.NotErrorIs(t, err, provider.ErrInvalidToken, body)
	}
}

func TestRedirectsAreUnavailable(t *testing.T) {
	t.Parallel()
	var elsewhereHits atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhereHits.Add(1)
	}))
	defer elsewhere.Close()
	for name, location := range map[string]string{
		"same host":    "/oauth2/introspect?again=1", // re-sent as a GET without the form: 404 from the fake
		"another host": strings.Replace(elsewhere.URL, "127.0.0.1", "localhost", 1) + "/oauth2/introspect",
	} {
		for _, status := range []int{http.StatusFound, http.StatusPermanentRedirect} {
			fake, p := newProvider(t, nil)
			fake.SetFault(providertest.Fault{Status: status, Location: location})
			_, err := validate(t, p, fake.Issue("ada", time.Hour, nil))
			assert.ErrorIs(t, err, provider.ErrUnavailable, "%s %d", name, status)
			assert.NotErrorIs(t, err, provider.ErrInvalidToken, "%s %d", name, status)
			assert.EqualValues(t, 1, fake.Calls(), "%s %d: the redirect was followed", name, status)
		}
	}
	assert.Zero(t, elsewhereHits.Load())
}

func TestAPanickingTransportFailsOneCall(t *testing.T) {
	t.Parallel()
	var on atomic.Bool
	on.Store(true)
	rt := roundTripper(func(r *http.Request) (*http.Response, error) {
		if on.Load() {
			panic("transport bug")
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	fake, p := newProvider(t, func(c *introspect.Config) { c.HTTPClient = &http.Client{Transport: rt, Timeout: 5 * time.Second} })
	token := fake.Issue("ada", time.Hour, nil)
	_, err := validate(t, p, token)
	var ue *provider.UnavailableError
	require.True(t, errors.As(err, &ue), "%v", err)
	assert.Contains(t, ue.Error(), "transport bug")
	on.Store(false)
	_, err = validate(t, p, token)
	assert.NoError(t, err)
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
