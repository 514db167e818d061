package plurality_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/plurality"
	"github.com/sessiongate/sessiongate/provider/providertest"
)

// docToken is the example token of Plurality's documentation: a
// canonical HS256 JWT (expired long ago).
const docToken = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZCI6ImNkODY4MjFlLTRiMDMtNGU3ZS04ZDg5LTRiNzZmZjNmZmU0OSIsInVuaXF1ZVNlc3Npb25JZCI6ImU5M2I0ZDQ1LTg0ZDAtNDRhOS05YzU1LTgyZTgxNjkxZDk3MSIsImlhdCI6MTczOTYyMzU0NCwiZXhwIjoxNzM5NzA5OTQ0fQ.HhMdOI-8vNVGmClrHJuMasfcOdJFaQ-VgxsH4zlgDug"

func newPair(t *testing.T, cfg plurality.Config) (*providertest.Plurality, *plurality.Provider) {
	t.Helper()
	fake := providertest.NewPlurality()
	t.Cleanup(fake.Close)
	cfg.BaseURL = fake.URL
	cfg.ClientID = fake.ClientID
	cfg.ClientSecret = provider.Secret(fake.ClientSecret)
	return fake, plurality.New(cfg)
}

func TestValidateSendsTheDocumentedRequest(t *testing.T) {
	t.Parallel()
	fake, p := newPair(t, plurality.Config{})
	token := fake.Issue("cd86821e-4b03-4e7e-8d89-4b76ff3ffe49", time.Hour)

	_, err := p.Validate(context.Background(), token)
	require.NoError(t, err)

	req := fake.LastRequest()
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/api/user/validate", req.Path)
	assert.Equal(t, "application/json", req.Header.Get("Content-Type"))
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(fake.ClientID+":"+fake.ClientSecret))
	assert.Equal(t, wantAuth, req.Header.Get("Authorization"))
	assert.JSONEq(t, fmt.Sprintf(`{"token": %q}`, token), string(req.Body))
}

func TestValidateIdentityFromTokenPayload(t *testing.T) {
	t.Parallel()
	fake, p := newPair(t, plurality.Config{})
	issued := time.Now().Truncate(time.Second) // exp is in whole seconds
	token := fake.Issue("user-1", time.Hour)

	id, err := p.Validate(context.Background(), token)
	require.NoError(t, err)
	assert.Equal(t, "user-1", id.UserID)
	assert.Equal(t, "plurality", id.Provider)
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, id.SessionID, "uniqueSessionId kept")
	assert.False(t, id.Expiry.Before(issued.Add(time.Hour+provider.DefaultLeeway)) || id.Expiry.After(time.Now().Add(time.Hour+provider.DefaultLeeway)), "expiry is the token's exp plus the leeway")
	assert.NotEmpty(t, id.TokenID)
	assert.Equal(t, "user-1", id.Claims["id"])
	assert.EqualValues(t, 1, fake.Calls())
}

func TestValidateIdentityFromAnswer(t *testing.T) {
	t.Parallel()
	fake, p := newPair(t, plurality.Config{})
	fake.Profile = func(userID string) map[string]any {
		return map[string]any{"user": map[string]any{"id": "answer-" + userID, "name": "Ada"}}
	}
	id, err := p.Validate(context.Background(), fake.Issue("u2", time.Hour))
	require.NoError(t, err)
	assert.Equal(t, "answer-u2", id.UserID, "the validated answer's id wins over the payload's")
	profile, ok := id.Claims["profile"].(map[string]any)
	require.True(t, ok, "the answer is kept as the profile")
	assert.Equal(t, "Ada", profile["user"].(map[string]any)["name"])
}

func TestValidateRejectedStatuses(t *testing.T) {
	t.Parallel()
	for _, status := range []int{400, 401, 403, 404} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			fake, p := newPair(t, plurality.Config{})
			fake.SetFault(providertest.Fault{Status: status, Body: []byte(`{"message":"no"}`)})
			_, err := p.Validate(context.Background(), fake.Issue("u", time.Hour))
			assert.ErrorIs(t, err, provider.ErrInvalidToken)
			assert.NotErrorIs(t, err, provider.ErrUnavailable)
		})
	}
}

func TestValidateUnavailable(t *testing.T) {
	t.Parallel()
	cases := map[string]providertest.Fault{
		"429":            {Status: 429, RetryAfter: "7"},
		"500":            {Status: 500},
		"502":            {Status: 502},
		"503":            {Status: 503, RetryAfter: "7"},
		"302 unfollowed": {Status: 302},
		"down":           {Down: true},
		"garbage 200":    {Status: 200, Body: []byte("<html>oops</html>")},
		"empty 200":      {Status: 200, Body: []byte{}},
		"oversized 200":  {Status: 200, Body: []byte(`{"pad":"` + strings.Repeat("x", 2<<20) + `"}`)},
		"hanging":        {Delay: time.Hour}, // only the client's timeout ends it
	}
	for name, fault := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fake, p := newPair(t, plurality.Config{Timeout: 300 * time.Millisecond})
			fake.SetFault(fault)
			// The test's own patience is generous: when it runs out, the
			// client's 300 ms timeout did not end the call.
			patience, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := p.Validate(patience, fake.Issue("u", time.Hour))
			assert.ErrorIs(t, err, provider.ErrUnavailable)
			assert.NotErrorIs(t, err, provider.ErrInvalidToken)
			assert.NoError(t, patience.Err(), "ended by the client's timeout")
			var ue *provider.UnavailableError
			if fault.RetryAfter != "" && assert.ErrorAs(t, err, &ue) {
				assert.Equal(t, 7*time.Second, ue.RetryAfter)
			}
		})
	}
}

func TestValidateConnectionRefused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	p := plurality.New(plurality.Config{BaseURL: base, ClientID: "id", ClientSecret: "s3cr3t-value"})
	_, err := p.Validate(context.Background(), docToken)
	assert.ErrorIs(t, err, provider.ErrUnavailable)
	assert.NotContains(t, err.Error(), "s3cr3t-value")
}

func TestValidateExpiredAndMalformed(t *testing.T) {
	t.Parallel()
	fake, p := newPair(t, plurality.Config{Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
	_, err := p.Validate(context.Background(), fake.Issue("u", time.Hour))
	assert.ErrorIs(t, err, provider.ErrInvalidToken, "an exp already past by our clock is expired")

	before := fake.Calls()
	for _, bad := range []string{"", "../../etc/passwd", "a\x00b", strings.Repeat("a", provider.MaxTokenSize+1), "tok en"} {
		_, err := p.Validate(context.Background(), bad)
		assert.ErrorIs(t, err, provider.ErrInvalidToken)
	}
	assert.Equal(t, before, fake.Calls(), "malformed tokens never reach the upstream")
}

func TestValidateRefusesRedirectToAnotherHost(t *testing.T) {
	t.Parallel()
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("followed a redirect to another host, carrying %q", r.Header.Get("Authorization"))
	}))
	defer elsewhere.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(elsewhere.URL, "127.0.0.1", "localhost", 1)+"/steal", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	p := plurality.New(plurality.Config{BaseURL: redirector.URL, ClientID: "id", ClientSecret: "secret"})
	_, err := p.Validate(context.Background(), docToken)
	assert.ErrorIs(t, err, provider.ErrUnavailable)
}

func TestSecretNeverPrinted(t *testing.T) {
	t.Parallel()
	const secret = "very-secret-client-secret"
	cfg := plurality.Config{ClientID: "id", ClientSecret: secret, BaseURL: "http://127.0.0.1:1"}
	p := plurality.New(cfg)
	basic := base64.StdEncoding.EncodeToString([]byte("id:" + secret))
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "cfg", cfg, "provider", p)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "secret", cfg.ClientSecret)
	_, verr := p.Validate(context.Background(), docToken)
	require.Error(t, verr)
	for _, s := range []string{
		fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%s", cfg.ClientSecret),
		fmt.Sprintf("%v", p), fmt.Sprintf("%+v", p), fmt.Sprintf("%#v", p), fmt.Sprintf("%v", *p),
		logged.String(), verr.Error(), fmt.Sprintf("%+v", verr),
	} {
		assert.NotContains(t, s, secret)
		assert.NotContains(t, s, basic)
	}
}

func TestNewPanicsWithoutCredentials(t *testing.T) {
	t.Parallel()
	assert.PanicsWithValue(t, "sessiongate/plurality: Config.ClientID and Config.ClientSecret are required", func() {
		plurality.New(plurality.Config{ClientID: "id"})
	})
	assert.Panics(t, func() { plurality.New(plurality.Config{ClientID: "id", ClientSecret: "s", BaseURL: "ftp://x"}) })
}

// Example shows a Plurality provider validating a token. In production leave
// BaseURL empty (Plurality's API) and read the credentials from the
// environment.
func Example() {
	fake := providertest.NewPlurality() // stands in for app.plurality.network
	defer fake.Close()

	p := plurality.New(plurality.Config{
		BaseURL:      fake.URL,
		ClientID:     fake.ClientID,
		ClientSecret: provider.Secret(fake.ClientSecret),
	})
	id, err := p.Validate(context.Background(), fake.Issue("alice", time.Hour))
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(id.Provider, id.UserID)
	// Output: plurality alice
}
