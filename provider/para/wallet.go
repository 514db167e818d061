package para

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/internal/strict"
)

// ErrWalletNotFound means the address is not one of the app's users'
// embedded wallets (or cannot be an address at all).
var ErrWalletNotFound = errors.New("para: wallet not found")

// maxAddressLen bounds a wallet address: EVM, Solana and Cosmos addresses
// are well under it.
const maxAddressLen = 128

// VerifyWallet asks Para (POST /wallets/verify) whether address is the
// embedded wallet of one of the app's users, and returns its wallet id.
// It returns an error wrapping ErrWalletNotFound for an unknown address
// (404) and for one that is not 1 to 128 letters and digits (no call is
// made), and an ErrUnavailable for everything else that is not an answer,
// a redirect (never followed) included.
func (p *Provider) VerifyWallet(ctx context.Context, address string) (string, error) {
	if !plausibleAddress(address) {
		return "", fmt.Errorf("%w: malformed address", ErrWalletNotFound)
	}
	resp, answer, err := p.post(ctx, "/wallets/verify", struct {
		Address string `json:"address"`
	}{address})
	if err != nil {
		return "", err
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return parseWallet(answer)
	case code == http.StatusNotFound:
		return "", ErrWalletNotFound
	case code == http.StatusBadRequest:
		return "", fmt.Errorf("%w: Para refused the address (400)", ErrWalletNotFound)
	default:
		return "", p.refused(resp)
	}
}

// parseWallet reads {"walletId": ...} from /wallets/verify's answer,
// exactly as named, duplicates refused.
func parseWallet(answer []byte) (string, error) {
	obj, err := strict.Object(answer)
	if err != nil {
		return "", &provider.UnavailableError{Provider: Name, Reason: "wallet answer is not the documented JSON"}
	}
	id, ok := obj["walletId"].(string)
	if !ok || id == "" || len(id) > 256 {
		return "", &provider.UnavailableError{Provider: Name, Reason: "wallet answer is not the documented JSON"}
	}
	return id, nil
}

func plausibleAddress(a string) bool {
	if len(a) == 0 || len(a) > maxAddressLen {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
