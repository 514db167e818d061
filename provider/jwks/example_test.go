package jwks_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sessiongate/sessiongate/provider/jwks"
	"github.com/sessiongate/sessiongate/provider/providertest"
)

// Example validates an OIDC issuer's access tokens: the key set is found
// through discovery, fetched once and cached.
func Example() {
	issuer := providertest.NewIssuer() // stands in for https://your-tenant.auth0.com/ and the like
	defer issuer.Close()

	p := jwks.New(jwks.Config{
		Name:      "auth0",
		Issuer:    issuer.URL,
		Audiences: []string{"https://api.example.com"},
	})
	token := issuer.Token("user-42", "https://api.example.com", time.Hour, map[string]any{"sid": "s-9"})

	id, err := p.Validate(context.Background(), token)
	fmt.Println(id.UserID, id.Provider, id.SessionID, err)
	// Output: user-42 auth0 s-9 <nil>
}
