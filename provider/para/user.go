package para

import (
	"encoding/json"

	"github.com/sessiongate/sessiongate/provider"
)

// User is what Para said about a signed-in user, read back from the
// claims of an Identity either provider returned. A verification token
// fills only AuthType, Identifier and OAuthMethod; a JWT fills the rest
// that applies to the user's auth type.
type User struct {
	UserID                string          `json:"userId,omitempty"`                // Para's user id (JWT only)
	AuthType              string          `json:"authType"`                        // "email", "phone", "farcaster", "telegram", "externalWallet"
	Identifier            string          `json:"identifier"`                      // the email, phone number, username or address of AuthType
	OAuthMethod           string          `json:"oAuthMethod,omitempty"`           // "google", "apple"... when signed in through one
	Email                 string          `json:"email,omitempty"`                 // for AuthType "email"
	Phone                 string          `json:"phone,omitempty"`                 // for AuthType "phone"
	TelegramUserID        string          `json:"telegramUserId,omitempty"`        // for AuthType "telegram"
	FarcasterUsername     string          `json:"farcasterUsername,omitempty"`     // for AuthType "farcaster"
	ExternalWalletAddress string          `json:"externalWalletAddress,omitempty"` // for AuthType "externalWallet"
	ExternalWallet        *ExternalWallet `json:"externalWallet,omitempty"`        // for AuthType "externalWallet"
	Wallets               []Wallet        `json:"wallets,omitempty"`               // the user's embedded wallets
}

// Wallet is one of a user's embedded wallets.
type Wallet struct {
	ID        string `json:"id"`                  // Para's wallet id
	Type      string `json:"type"`                // "EVM", "SOLANA", "COSMOS"
	Address   string `json:"address"`             // the chain address
	PublicKey string `json:"publicKey,omitempty"` // when Para gives it
}

// ExternalWallet is the wallet a user signed in with, for auth type
// "externalWallet".
type ExternalWallet struct {
	Address  string `json:"address"`  // the chain address
	Type     string `json:"type"`     // "EVM", "SOLANA", "COSMOS"
	Provider string `json:"provider"` // the wallet app, such as "MetaMask"
}

// UserOf reads the Para user out of id's claims. It reports false when id
// was not validated by Para or its claims do not have Para's shape.
func UserOf(id *provider.Identity) (User, bool) {
	var u User
	if id == nil || id.Provider != Name {
		return u, false
	}
	raw, err := json.Marshal(id.Claims)
	if err != nil || json.Unmarshal(raw, &u) != nil || u.AuthType == "" {
		return User{}, false
	}
	return u, true
}
