package jwks_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/jwks"
	"github.com/sessiongate/sessiongate/provider/providertest"
)

// A token signed with a key published while a refetch was already in
// flight (its request read the old set) is not refused as invalid: the
// fetch it waited on began before it arrived.
func TestRotationDuringAnInFlightFetchIsNotInvalid(t *testing.T) {
	t.Parallel()
	keys := providertest.NewKeys()
	read, release := make(chan struct{}, 1), make(chan struct{})
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := keys.JWKS() // read now
		n++
		if n == 2 {
			read <- struct{}{}
			<-release
		}
		w.Write(body)
	}))
	defer srv.Close()
	p := jwks.New(jwks.Config{Name: "oidc", Issuer: "https://iss", Audiences: []string{"api"}, JWKSURL: srv.URL})
	claims := func() map[string]any {
		return map[string]any{"iss": "https://iss", "sub": "u", "aud": "api", "exp": time.Now().Add(time.Hour).Unix()}
	}
	ctx := context.Background()
	if _, err := p.Validate(ctx, keys.Sign(claims())); err != nil {
		t.Fatal(err)
	}
	go p.Validate(ctx, keys.SignWithHeaders(map[string]any{"kid": "nope"}, claims()))
	<-read // the refetch has read the old set; its answer is still on the way
	keys.Rotate("RS256")
	tok := keys.Sign(claims()) // issued after the rotation, arrives before the fetch completes
	res := make(chan error, 1)
	go func() { _, err := p.Validate(ctx, tok); res <- err }()
	time.Sleep(200 * time.Millisecond) // let it join the fetch in flight (if it has not, it meets the throttle: 503 too)
	close(release)
	err := <-res
	if errors.Is(err, provider.ErrInvalidToken) {
		t.Errorf("refused as invalid (401, negative-cached) though the fetch began before it arrived")
	}
}

// A key published with "use": "enc" never verifies, whatever other
// spellings of the member say.
func TestJWKUseIsReadExactly(t *testing.T) {
	t.Parallel()
	keys := providertest.NewKeys()
	// mutate published JWKS: add "use":"enc" and "USE":"sig"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := keys.JWKS()
		s := string(b)
		// insert members after first '{' of the key object
		i := len(`{"keys":[{`)
		s = strings.Replace(s[:i]+`"use":"enc","USE":"sig",`+s[i:], `"use":"sig",`, ``, 1)
		w.Write([]byte(s))
	}))
	defer srv.Close()
	p := jwks.New(jwks.Config{Name: "oidc", Issuer: "https://iss", Audiences: []string{"api"}, JWKSURL: srv.URL})
	_, err := p.Validate(context.Background(), keys.Sign(map[string]any{"iss": "https://iss", "sub": "u", "aud": "api", "exp": time.Now().Add(time.Hour).Unix()}))
	if err == nil {
		t.Errorf("a key whose use is enc verified a token")
	}
}
