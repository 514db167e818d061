package introspect_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/introspect"
	"github.com/sessiongate/sessiongate/provider/providertest"
)

// Example validates an opaque access token at an RFC 7662 endpoint.
func Example() {
	as := providertest.NewIntrospection() // stands in for https://as.example.com/oauth2/introspect
	defer as.Close()

	p := introspect.New(introspect.Config{
		Name:         "corp-sso",
		URL:          as.URL,
		ClientID:     as.ClientID,
		ClientSecret: provider.Secret(as.ClientSecret),
	})
	id, err := p.Validate(context.Background(), as.Issue("ada", time.Hour, nil))
	fmt.Println(id.UserID, id.Provider, err)

	_, err = p.Validate(context.Background(), "revoked-or-unknown")
	fmt.Println(err)
	// Output:
	// ada corp-sso <nil>
	// provider: corp-sso: invalid token: inactive
}
