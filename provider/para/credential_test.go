package para_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/providertest"
)

func TestVerificationTokenIDIsEmptyAndSpellingsAreRefused(t *testing.T) {
	t.Parallel()
	fake, p := newVerifier(t)
	id, err := p.Validate(ctx(t), fake.VerificationToken(providertest.ParaUser{Identifier: "ada@example.com"}, time.Hour))
	require.NoError(t, err)
	assert.Empty(t, id.TokenID, "Para's answer names the user, not the credential")

	calls := fake.VerifyCalls()
	for _, token := range []string{
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbh", // trailing bits set
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbg==",
	} {
		_, err := p.Validate(ctx(t), token)
		assert.ErrorIs(t, err, provider.ErrInvalidToken, token)
		assert.ErrorContains(t, err, "malformed", token)
	}
	assert.Equal(t, calls, fake.VerifyCalls(), "a non-canonical JWS reached Para")
}

func TestAnswersAreReadExactlyAsNamed(t *testing.T) {
	t.Parallel()
	fake, p := newVerifier(t)
	user := fake.User(providertest.ParaUser{Identifier: "ada@example.com"})
	token := fake.VerificationToken(user, time.Hour)
	for _, body := range []string{
		`{"AuthType": "email", "Identifier": "mallory@example.com"}`,
		`{"authType": "email", "identifier": "ada@example.com", "identifier": "mallory@example.com"}`,
		`{"authType": "email", "identifier": "ada@example.com", "oAuthMethod": 7}`,
	} {
		fake.SetFault(providertest.Fault{Body: []byte(body)})
		_, err := p.Validate(ctx(t), token)
		assert.ErrorIs(t, err, provider.ErrUnavailable, body)
		assert.NotErrorIs(t, err, provider.ErrInvalidToken, body)
	}
	for _, body := range []string{`{"WalletId": "w-1"}`, `{"walletId": "w-1", "walletId": "w-2"}`} {
		fake.SetFault(providertest.Fault{Body: []byte(body)})
		_, err := p.VerifyWallet(ctx(t), user.Wallets[0].Address)
		assert.ErrorIs(t, err, provider.ErrUnavailable, body)
	}
}

func TestRedirectsAreUnavailable(t *testing.T) {
	t.Parallel()
	var elsewhereHits atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhereHits.Add(1)
	}))
	defer elsewhere.Close()
	other := strings.Replace(elsewhere.URL, "127.0.0.1", "localhost", 1)
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
		for name, location := range map[string]string{
			"same host": "/sessions/verify?again=1", "another host": other + "/sessions/verify",
		} {
			fake, p := newVerifier(t)
			user := fake.User(providertest.ParaUser{Identifier: "ada@example.com"})
			token := fake.VerificationToken(user, time.Hour)
			fake.SetFault(providertest.Fault{Status: status, Location: location})
			_, err := p.Validate(ctx(t), token)
			assert.ErrorIs(t, err, provider.ErrUnavailable, "verify: %s %d", name, status)
			assert.NotErrorIs(t, err, provider.ErrInvalidToken, "verify: %s %d", name, status)
			assert.EqualValues(t, 1, fake.VerifyCalls(), "verify: %s %d: the redirect was followed", name, status)

			fake.SetFault(providertest.Fault{Status: status, Location: strings.Replace(location, "sessions", "wallets", 1)})
			_, err = p.VerifyWallet(ctx(t), user.Wallets[0].Address)
			assert.ErrorIs(t, err, provider.ErrUnavailable, "wallet: %s %d", name, status)
			assert.EqualValues(t, 1, fake.WalletCalls(), "wallet: %s %d: the redirect was followed", name, status)
		}
	}
	assert.Zero(t, elsewhereHits.Load())
}
