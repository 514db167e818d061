package providertest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// randomString returns n random characters of the base64url alphabet.
func randomString(n int) string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(n))[:n]
}

// randomUUID returns a random (version 4) UUID in canonical form.
func randomUUID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("providertest: crypto/rand: %v", err))
	}
	return b
}
