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
	UserID                string          `json:"userId,omitempty"`
	AuthType              string          `json:"authType"`
	Identifier            string          `json:"identifier"`
	OAuthMethod           string          `json:"oAuthMethod,omitempty"`
	Email                 string          `json:"email,omitempty"`
	Phone                 string          `json:"phone,omitempty"`
	TelegramUserID        string          `json:"telegramUserId,omitempty"`
	FarcasterUsername     string          `json:"farcasterUsername,omitempty"`
	ExternalWalletAddress string          `json:"externalWalletAddress,omitempty"`
	ExternalWallet        *ExternalWallet `json:"externalWallet,omitempty"`
	Wallets               []Wallet        `json:"wallets,omitempty"`
}

// Wallet is one of a user's embedded wallets.
type Wallet struct {
	ID        string `json:"id"`
	Type      string `json:"type"` // "EVM", "SOLANA", "COSMOS"
	Address   string `json:"address"`
	PublicKey string `json:"publicKey,omitempty"`
}

// ExternalWallet is the wallet a user signed in with, for auth type
// "externalWallet".
type ExternalWallet struct {
	Address  string `json:"address"`
	Type     string `json:"type"`
	Provider string `json:"provider"`
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
