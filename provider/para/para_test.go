package para_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/internal/jwtrules"
	"github.com/sessiongate/sessiongate/provider/para"
	"github.com/sessiongate/sessiongate/provider/providertest"
)

func newVerifier(t *testing.T) (*providertest.Para, *para.Provider) {
	t.Helper()
	fake := providertest.NewPara()
	t.Cleanup(fake.Close)
	return fake, para.New(para.Config{BaseURL: fake.URL, SecretAPIKey: provider.Secret(fake.SecretAPIKey), Timeout: testTimeout})
}

// testTimeout bounds upstream calls to a healthy fake: generous, so that
// no call is cut under -race on a busy machine. Tests of a hanging
// upstream use their own short timeout.
const testTimeout = 30 * time.Second

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	t.Cleanup(cancel)
	return c
}

func TestVerificationTokenSpeaksTheDocumentedWireFormat(t *testing.T) {
	t.Parallel()
	fake, p := newVerifier(t)
	token := fake.VerificationToken(providertest.ParaUser{Identifier: "ada@example.com", OAuthMethod: "google"}, time.Hour)

	id, err := p.Validate(ctx(t), token)
	require.NoError(t, err)
	assert.Equal(t, "email:ada@example.com", id.UserID)
	assert.Equal(t, "para", id.Provider)
	assert.True(t, id.Expiry.IsZero(), "Para's answer carries no expiry")
	assert.Equal(t, map[string]any{"authType": "email", "identifier": "ada@example.com", "oAuthMethod": "google"}, id.Claims)

	req := fake.LastRequest()
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/sessions/verify", req.Path)
	assert.Equal(t, "application/json", req.Header.Get("Content-Type"))
	assert.Equal(t, fake.SecretAPIKey, req.Header.Get("X-External-Api-Key"))
	assert.JSONEq(t, fmt.Sprintf(`{"verificationToken": %q}`, token), string(req.Body))
	assert.EqualValues(t, 1, fake.VerifyCalls())
}

func TestVerificationUserIDIsStableAcrossSignIns(t *testing.T) {
	t.Parallel()
	fake, p := newVerifier(t)
	for _, u := range []providertest.ParaUser{
		{AuthType: "phone", Identifier: "+13105551234"},
		{AuthType: "telegram", Identifier: "1234567890"},
		{AuthType: "farcaster", Identifier: "FarcasterUsername"},
		{AuthType: "externalWallet", Identifier: "0xaD6b78193b78e23F9aBBB675734f4a2B3559598D"},
	} {
		first, err := p.Validate(ctx(t), fake.VerificationToken(u, time.Hour))
		require.NoError(t, err)
		second, err := p.Validate(ctx(t), fake.VerificationToken(u, time.Hour))
		require.NoError(t, err)
		assert.Equal(t, u.AuthType+":"+u.Identifier, first.UserID)
		assert.Equal(t, first.UserID, second.UserID)
		user, ok := para.UserOf(first)
		require.True(t, ok)
		assert.Equal(t, u.AuthType, user.AuthType)
		assert.Equal(t, u.Identifier, user.Identifier)
	}
}

func TestVerificationFailures(t *testing.T) {
	t.Parallel()
	fake, p := newVerifier(t)
	user := providertest.ParaUser{Identifier: "ada@example.com"}

	expired := fake.VerificationToken(user, -time.Second)
	_, err := p.Validate(ctx(t), expired)
	assert.ErrorIs(t, err, provider.ErrInvalidToken, "403 is an expired session")
	assert.ErrorContains(t, err, "403")

	revoked := fake.VerificationToken(user, time.Hour)
	fake.Revoke(revoked)
	_, err = p.Validate(ctx(t), revoked)
	assert.ErrorIs(t, err, provider.ErrInvalidToken)

	calls := fake.VerifyCalls()
	for _, bad := range []string{"", strings.Repeat("a", provider.MaxTokenSize+1), "../admin", "a b", strings.Repeat(".", 1<<20)} {
		_, err = p.Validate(ctx(t), bad)
		assert.ErrorIs(t, err, provider.ErrInvalidToken)
	}
	assert.Equal(t, calls, fake.VerifyCalls(), "malformed tokens reached Para")

	wrongKey := para.New(para.Config{BaseURL: fake.URL, SecretAPIKey: "sk_wrong"})
	_, err = wrongKey.Validate(ctx(t), fake.VerificationToken(user, time.Hour))
	assert.ErrorIs(t, err, provider.ErrUnavailable, "a refused secret key is our configuration, not the user's token")
	assert.NotErrorIs(t, err, provider.ErrInvalidToken)
	assert.NotContains(t, err.Error(), "sk_wrong")

	live := fake.VerificationToken(user, time.Hour)
	for name, tc := range map[string]struct {
		fault providertest.Fault
		want  error
	}{
		"400":             {providertest.Fault{Status: 400, Body: []byte(`{"error":"Missing verification token"}`)}, provider.ErrInvalidToken},
		"404":             {providertest.Fault{Status: 404}, provider.ErrInvalidToken},
		"429":             {providertest.Fault{Status: 429, RetryAfter: "9"}, provider.ErrUnavailable},
		"500":             {providertest.Fault{Status: 500}, provider.ErrUnavailable},
		"502":             {providertest.Fault{Status: 502}, provider.ErrUnavailable},
		"not json":        {providertest.Fault{Body: []byte("<html>ok</html>")}, provider.ErrUnavailable},
		"no identifier":   {providertest.Fault{Body: []byte(`{"authType":"email"}`)}, provider.ErrUnavailable},
		"wrong types":     {providertest.Fault{Body: []byte(`{"authType":1,"identifier":["a"]}`)}, provider.ErrUnavailable},
		"oversized":       {providertest.Fault{Body: []byte(`{"authType":"email","identifier":"` + strings.Repeat("a", provider.MaxBodySize) + `"}`)}, provider.ErrUnavailable},
		"down":            {providertest.Fault{Down: true}, provider.ErrUnavailable},
		"slow beyond 1 s": {providertest.Fault{Delay: time.Hour}, provider.ErrUnavailable}, // only a 1 s timeout ends it
	} {
		fake.SetFault(tc.fault)
		q := p
		if tc.fault.Delay > 0 {
			q = para.New(para.Config{BaseURL: fake.URL, SecretAPIKey: provider.Secret(fake.SecretAPIKey), Timeout: time.Second})
		}
		_, err := q.Validate(ctx(t), live)
		assert.ErrorIs(t, err, tc.want, name)
		if tc.want == provider.ErrUnavailable {
			assert.NotErrorIs(t, err, provider.ErrInvalidToken, name)
		}
		assert.NotContains(t, err.Error(), live, name)
		if name == "429" {
			var ue *provider.UnavailableError
			require.ErrorAs(t, err, &ue)
			assert.Equal(t, 9*time.Second, ue.RetryAfter)
		}
	}
	fake.SetFault(providertest.Fault{})
	_, err = p.Validate(ctx(t), live)
	assert.NoError(t, err)
}

func TestVerifyWallet(t *testing.T) {
	t.Parallel()
	fake, p := newVerifier(t)
	user := fake.User(providertest.ParaUser{Identifier: "ada@example.com"})
	wallet := user.Wallets[0]

	id, err := p.VerifyWallet(ctx(t), wallet.Address)
	require.NoError(t, err)
	assert.Equal(t, wallet.ID, id)
	req := fake.LastRequest()
	assert.Equal(t, "/wallets/verify", req.Path)
	assert.Equal(t, fake.SecretAPIKey, req.Header.Get("X-External-Api-Key"))
	assert.JSONEq(t, fmt.Sprintf(`{"address": %q}`, wallet.Address), string(req.Body))

	_, err = p.VerifyWallet(ctx(t), "0x0000000000000000000000000000000000000000")
	assert.ErrorIs(t, err, para.ErrWalletNotFound, "404")

	calls := fake.WalletCalls()
	for _, bad := range []string{"", "0x12 34", `0x"}`, strings.Repeat("a", 129)} {
		_, err = p.VerifyWallet(ctx(t), bad)
		assert.ErrorIs(t, err, para.ErrWalletNotFound, "%q", bad)
	}
	assert.Equal(t, calls, fake.WalletCalls(), "malformed addresses reached Para")

	for name, fault := range map[string]providertest.Fault{
		"500": {Status: 500}, "401": {Status: 401}, "garbage": {Body: []byte("[")}, "no id": {Body: []byte(`{}`)},
	} {
		fake.SetFault(fault)
		_, err = p.VerifyWallet(ctx(t), wallet.Address)
		assert.ErrorIs(t, err, provider.ErrUnavailable, name)
		assert.NotErrorIs(t, err, para.ErrWalletNotFound, name)
	}
}

func TestJWTRules(t *testing.T) {
	jwtrules.Run(t, func(t *testing.T) jwtrules.Upstream {
		fake := providertest.NewPara()
		t.Cleanup(fake.Close)
		return jwtrules.Upstream{
			Keys:     fake.Keys,
			SetFault: fake.SetFault,
			New: func(now func() time.Time, refresh time.Duration) provider.Provider {
				return para.NewJWT(para.Config{BaseURL: fake.URL, APIKeyID: fake.APIKeyID, RefreshInterval: refresh, Now: now, Timeout: testTimeout})
			},
			Claims: func(sub string, iat, exp time.Time) map[string]any {
				u := providertest.ParaUser{ID: sub, Identifier: sub + "@example.com"}
				u.Wallets = []providertest.ParaWallet{}
				return map[string]any{"data": providertest.ParaData(u), "iat": iat.Unix(), "exp": exp.Unix(), "aud": fake.APIKeyID, "sub": sub}
			},
		}
	})
}

func TestJWTIdentityCarriesTheDocumentedData(t *testing.T) {
	t.Parallel()
	fake := providertest.NewPara()
	defer fake.Close()
	p := para.NewJWT(para.Config{BaseURL: fake.URL, APIKeyID: fake.APIKeyID})

	for _, u := range []providertest.ParaUser{
		{Identifier: "ada@example.com", OAuthMethod: "google"},
		{AuthType: "phone", Identifier: "+13105551234"},
		{AuthType: "telegram", Identifier: "1234567890"},
		{AuthType: "farcaster", Identifier: "FarcasterUsername"},
		{AuthType: "externalWallet", Identifier: "0xaD6b78193b78e23F9aBBB675734f4a2B3559598D"},
	} {
		u = fake.User(u)
		issued := time.Now().Truncate(time.Second) // exp is in whole seconds
		token := fake.JWT(u, 30*time.Minute)
		id, err := p.Validate(ctx(t), token)
		require.NoError(t, err, u.AuthType)
		assert.Equal(t, u.ID, id.UserID, "sub is the user id")
		assert.Equal(t, "para", id.Provider)
		assert.False(t, id.Expiry.Before(issued.Add(30*time.Minute+provider.DefaultLeeway)) || id.Expiry.After(time.Now().Add(30*time.Minute+provider.DefaultLeeway)), "expiry is the JWT's exp plus the leeway")

		user, ok := para.UserOf(id)
		require.True(t, ok)
		assert.Equal(t, u.ID, user.UserID)
		assert.Equal(t, u.AuthType, user.AuthType)
		assert.Equal(t, u.Identifier, user.Identifier)
		assert.Equal(t, u.OAuthMethod, user.OAuthMethod)
		require.Len(t, user.Wallets, 1)
		assert.Equal(t, u.Wallets[0].Address, user.Wallets[0].Address)
		switch u.AuthType {
		case "email":
			assert.Equal(t, u.Identifier, user.Email)
		case "phone":
			assert.Equal(t, u.Identifier, user.Phone)
		case "telegram":
			assert.Equal(t, u.Identifier, user.TelegramUserID)
		case "farcaster":
			assert.Equal(t, u.Identifier, user.FarcasterUsername)
		case "externalWallet":
			assert.Equal(t, u.Identifier, user.ExternalWalletAddress)
			require.NotNil(t, user.ExternalWallet)
			assert.Equal(t, "MetaMask", user.ExternalWallet.Provider)
		}
	}
	assert.EqualValues(t, 1, fake.Keys.Calls())
	assert.Zero(t, fake.VerifyCalls(), "JWTs are verified locally")
}

func TestJWTWhoseDataNamesAnotherUserIsRefused(t *testing.T) {
	t.Parallel()
	fake := providertest.NewPara()
	defer fake.Close()
	p := para.NewJWT(para.Config{BaseURL: fake.URL, APIKeyID: fake.APIKeyID})
	now := time.Now()
	token := fake.Keys.Sign(map[string]any{
		"data": map[string]any{"userId": "mallory", "authType": "email", "identifier": "m@example.com"},
		"iat":  now.Unix(), "exp": now.Add(time.Minute).Unix(), "aud": fake.APIKeyID, "sub": "ada",
	})
	_, err := p.Validate(ctx(t), token)
	assert.ErrorIs(t, err, provider.ErrInvalidToken)
}

func TestBaseURLAndConfiguration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": para.ProdURL, "prod": para.ProdURL, "BETA": para.BetaURL, "http://127.0.0.1:9/": "http://127.0.0.1:9"} {
		got, err := para.BaseURL(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"staging", "ftp://x", "/relative"} {
		_, err := para.BaseURL(bad)
		assert.Error(t, err, bad)
	}
	assert.Panics(t, func() { para.New(para.Config{}) }, "no secret key")
	assert.Panics(t, func() { para.NewJWT(para.Config{}) }, "no API key id")
	assert.Panics(t, func() { para.New(para.Config{SecretAPIKey: "k", BaseURL: "staging"}) })

	cfg := para.Config{SecretAPIKey: "sk_live_abcdef"}
	p := para.New(cfg)
	for _, s := range []string{fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg), fmt.Sprintf("%v %+v", p, p)} {
		assert.NotContains(t, s, "sk_live_abcdef")
	}
	raw, err := json.Marshal(cfg.SecretAPIKey)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "sk_live_abcdef")
}
