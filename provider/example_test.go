package provider_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/para"
	"github.com/sessiongate/sessiongate/provider/plurality"
	"github.com/sessiongate/sessiongate/provider/providertest"
)

// ExampleNewMulti accepts Plurality tokens and Para JWTs in one app. Each
// token goes to the one provider whose rule claims it; the identity (and
// so the session) records which one validated it. Pass p as
// middleware.Config.Provider.
func ExampleNewMulti() {
	plur, paraAPI := providertest.NewPlurality(), providertest.NewPara() // stand-ins for the real APIs
	defer plur.Close()
	defer paraAPI.Close()

	p := provider.NewMulti(
		provider.Route{
			Match: provider.ClaimMatches("uniqueSessionId"), // Plurality's tokens carry it
			Provider: plurality.New(plurality.Config{BaseURL: plur.URL,
				ClientID: plur.ClientID, ClientSecret: provider.Secret(plur.ClientSecret)}),
		},
		provider.Route{
			Match:    provider.ClaimMatches("aud", paraAPI.APIKeyID), // Para JWTs for this app
			Provider: para.NewJWT(para.Config{BaseURL: paraAPI.URL, APIKeyID: paraAPI.APIKeyID}),
		},
	)
	user := paraAPI.User(providertest.ParaUser{ID: "para-user-1", Identifier: "ada@example.com"})
	for _, token := range []string{plur.Issue("alice", time.Hour), paraAPI.JWT(user, time.Hour), "an-opaque-token"} {
		id, err := p.Validate(context.Background(), token)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(id.Provider, id.UserID)
	}
	// Output:
	// plurality alice
	// para para-user-1
	// provider: plurality|para: invalid token: no configured provider accepts this kind of token
}
