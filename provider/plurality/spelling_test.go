package plurality_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/plurality"
	"github.com/sessiongate/sessiongate/provider/providertest"
)

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// flipLast replaces the last character c of token by the one whose index
// is index(c) XOR 1: the same bytes to a lenient base64url decoder.
func flipLast(token string) string {
	c := strings.IndexByte(alphabet, token[len(token)-1])
	return token[:len(token)-1] + string(alphabet[c^1])
}

// Plurality's fake, like Plurality, decodes tokens leniently: the second
// spelling would validate upstream. It must be refused before the call.
func TestASecondSpellingIsRefusedBeforeTheCall(t *testing.T) {
	t.Parallel()
	fake, p := newPair(t, plurality.Config{})
	token := fake.Issue("u", time.Hour)
	id, err := p.Validate(context.Background(), token)
	require.NoError(t, err)
	require.NotEmpty(t, id.TokenID)
	calls := fake.Calls()

	payload := strings.Split(token, ".")[1]
	for name, spelling := range map[string]string{
		"signature's trailing bits": flipLast(token),
		"padding":                   token + "=",
		"standard alphabet":         strings.Replace(token, payload, strings.NewReplacer("-", "+", "_", "/").Replace(payload)+"+", 1),
		"not a JWT":                 "an-opaque-token",
		"four parts":                token + ".e30",
		"payload not an object":     strings.Replace(token, payload, "WzFd", 1),
		"duplicate claims":          strings.Replace(token, payload, "eyJpZCI6ImEiLCJpZCI6ImIifQ", 1), // {"id":"a","id":"b"}
	} {
		_, err := p.Validate(context.Background(), spelling)
		assert.ErrorIs(t, err, provider.ErrInvalidToken, name)
		assert.ErrorContains(t, err, "malformed", name)
	}
	assert.Equal(t, calls, fake.Calls(), "a non-canonical token reached Plurality")
}

func TestExpiryIsExpPlusLeewayAndRangeChecked(t *testing.T) {
	t.Parallel()
	now := time.Now().Truncate(time.Second)
	clock := func() time.Time { return now }
	fake, p := newPair(t, plurality.Config{Now: clock, Leeway: 10 * time.Second})

	id, err := p.Validate(context.Background(), fake.IssueWith("u", time.Hour, map[string]any{"exp": now.Add(time.Hour).Unix()}))
	require.NoError(t, err)
	assert.Equal(t, now.Add(time.Hour+10*time.Second), id.Expiry.Local())

	// The fake itself checks exp against its own clock, so these tokens
	// are live upstream; only the local clock says they are old.
	late := func(d time.Duration) time.Time { return now.Add(time.Hour + d) }
	for name, tc := range map[string]struct {
		at   time.Time
		want error
	}{
		"within the leeway":         {late(9 * time.Second), nil},
		"at exp plus the leeway":    {late(10 * time.Second), provider.ErrInvalidToken},
		"beyond exp and the leeway": {late(time.Minute), provider.ErrInvalidToken},
	} {
		p := plurality.New(plurality.Config{BaseURL: fake.URL, ClientID: fake.ClientID, ClientSecret: provider.Secret(fake.ClientSecret),
			Leeway: 10 * time.Second, Now: func() time.Time { return tc.at }})
		_, err := p.Validate(context.Background(), fake.IssueWith("u", 2*time.Hour, map[string]any{"exp": now.Add(time.Hour).Unix()}))
		if tc.want == nil {
			assert.NoError(t, err, name)
		} else {
			assert.ErrorIs(t, err, tc.want, name)
		}
	}

	for name, extra := range map[string]map[string]any{
		"exp 1e16":       {"exp": 1e16},
		"exp negative":   {"exp": -1},
		"exp a string":   {"exp": "tomorrow"},
		"iat 1e16":       {"iat": 1e16},
		"nbf 1e300":      {"nbf": 1e300},
		"auth_time 1e16": {"auth_time": 1e16},
	} {
		_, err := p.Validate(context.Background(), fake.IssueWith("u", time.Hour, extra))
		assert.ErrorIs(t, err, provider.ErrInvalidToken, name)
		assert.NotErrorIs(t, err, provider.ErrUnavailable, name)
	}
}

// The fake, like a lenient upstream, lets the last of duplicate members
// win; sessiongate would read a different user or expiry than it checked.
func TestDuplicateClaimsAreRefusedBeforeTheCall(t *testing.T) {
	t.Parallel()
	fake, p := newPair(t, plurality.Config{})
	live := time.Now().Add(time.Hour).Unix()
	calls := fake.Calls()
	for _, payload := range []string{
		fmt.Sprintf(`{"id": "mallory", "id": "ada", "exp": %d}`, live),
		fmt.Sprintf(`{"id": "ada", "exp": 1, "exp": %d}`, live),
		fmt.Sprintf(`{"id": "ada", "exp": %d, "profile": {"a": 1, "a": 2}}`, live),
	} {
		_, err := p.Validate(context.Background(), fake.IssueRaw([]byte(payload)))
		assert.ErrorIs(t, err, provider.ErrInvalidToken, payload)
		assert.ErrorContains(t, err, "malformed", payload)
	}
	assert.Equal(t, calls, fake.Calls(), "a token with duplicate claims reached Plurality")
}

func TestValidationRedirectsAreUnavailable(t *testing.T) {
	t.Parallel()
	var elsewhereHits atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhereHits.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer elsewhere.Close()
	for name, location := range map[string]string{
		// Go would re-send the GET without its body: the fake answers
		// 400, which must not become "invalid token".
		"same host":    "/api/user/validate?again=1",
		"another host": strings.Replace(elsewhere.URL, "127.0.0.1", "localhost", 1) + "/api/user/validate",
	} {
		for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
			fake, p := newPair(t, plurality.Config{})
			fake.SetFault(providertest.Fault{Status: status, Location: location})
			_, err := p.Validate(context.Background(), fake.Issue("u", time.Hour))
			assert.ErrorIs(t, err, provider.ErrUnavailable, "%s %d", name, status)
			assert.NotErrorIs(t, err, provider.ErrInvalidToken, "%s %d", name, status)
			assert.EqualValues(t, 1, fake.Calls(), "%s %d: the redirect was followed", name, status)
		}
	}
	assert.Zero(t, elsewhereHits.Load(), "a redirect to another host was followed")
}

// panicking is a RoundTripper that panics, as a broken custom transport
// might.
type panicking struct{ on atomic.Bool }

func (p *panicking) RoundTrip(r *http.Request) (*http.Response, error) {
	if p.on.Load() {
		panic("transport bug")
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestAPanickingTransportFailsOneCall(t *testing.T) {
	t.Parallel()
	rt := &panicking{}
	rt.on.Store(true)
	fake := providertest.NewPlurality()
	defer fake.Close()
	p := plurality.New(plurality.Config{BaseURL: fake.URL, ClientID: fake.ClientID, ClientSecret: provider.Secret(fake.ClientSecret),
		HTTPClient: &http.Client{Transport: rt, Timeout: 5 * time.Second}})
	token := fake.Issue("u", time.Hour)

	_, err := p.Validate(context.Background(), token)
	var ue *provider.UnavailableError
	require.True(t, errors.As(err, &ue), "a panic is one unavailable call: %v", err)
	assert.Contains(t, ue.Error(), "transport bug")
	assert.Contains(t, ue.Error(), "goroutine", "the stack is in the error, to be logged once")
	assert.NotContains(t, ue.Error(), token)

	rt.on.Store(false)
	id, err := p.Validate(context.Background(), token)
	require.NoError(t, err, "later calls work")
	assert.Equal(t, "u", id.UserID)
}
