package para_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/para"
	"github.com/sessiongate/sessiongate/provider/providertest"
)

// ExampleNew validates a verification token from the frontend's
// para.getVerificationToken(). Give middleware.Config.Provider the
// Provider instead of calling Validate yourself.
func ExampleNew() {
	upstream := providertest.NewPara() // stands in for api.getpara.com
	defer upstream.Close()

	p := para.New(para.Config{
		BaseURL:      upstream.URL, // or "BETA", or leave empty for PROD
		SecretAPIKey: provider.Secret(upstream.SecretAPIKey),
	})
	token := upstream.VerificationToken(providertest.ParaUser{Identifier: "ada@example.com"}, time.Hour)

	id, err := p.Validate(context.Background(), token)
	fmt.Println(id.UserID, id.Provider, err)
	// Output: email:ada@example.com para <nil>
}

// ExampleNewJWT verifies a JWT from the frontend's issueJwt() locally,
// against Para's key set, and reads the user's wallets from it.
func ExampleNewJWT() {
	upstream := providertest.NewPara()
	defer upstream.Close()

	p := para.NewJWT(para.Config{
		BaseURL:  upstream.URL,
		APIKeyID: upstream.APIKeyID, // the aud of the app's JWTs
	})
	user := upstream.User(providertest.ParaUser{ID: "d5358219-38d3-4650-91a8-e338131d1c5e", Identifier: "ada@example.com",
		Wallets: []providertest.ParaWallet{{ID: "w-1", Type: "EVM", Address: "0x9dd3824f045c77bc369485e8f1dd6b452b6be617"}}})

	id, err := p.Validate(context.Background(), upstream.JWT(user, 30*time.Minute))
	if err != nil {
		fmt.Println(err)
		return
	}
	u, _ := para.UserOf(id)
	fmt.Println(id.UserID, u.Email, u.Wallets[0].Type, u.Wallets[0].Address)
	// Output: d5358219-38d3-4650-91a8-e338131d1c5e ada@example.com EVM 0x9dd3824f045c77bc369485e8f1dd6b452b6be617
}

// ExampleProvider_VerifyWallet checks that an address is one of the app's
// users' embedded wallets.
func ExampleProvider_VerifyWallet() {
	upstream := providertest.NewPara()
	defer upstream.Close()
	upstream.User(providertest.ParaUser{Identifier: "ada@example.com",
		Wallets: []providertest.ParaWallet{{ID: "w-1", Type: "EVM", Address: "0x9dd3824f045c77bc369485e8f1dd6b452b6be617"}}})
	p := para.New(para.Config{BaseURL: upstream.URL, SecretAPIKey: provider.Secret(upstream.SecretAPIKey)})

	id, err := p.VerifyWallet(context.Background(), "0x9dd3824f045c77bc369485e8f1dd6b452b6be617")
	fmt.Println(id, err)
	_, err = p.VerifyWallet(context.Background(), "0x0000000000000000000000000000000000000000")
	fmt.Println(err)
	// Output:
	// w-1 <nil>
	// para: wallet not found
}
