package para

import "testing"

func FuzzParseVerification(f *testing.F) {
	f.Add([]byte(`{"authType":"email","identifier":"a@example.com","oAuthMethod":"google"}`))
	f.Add([]byte(`{"authType":"phone"}`))
	f.Add([]byte(`{"authType":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, answer []byte) {
		id, err := parseVerification(answer)
		if err == nil && (id == nil || id.UserID == "" || id.Provider != Name) {
			t.Fatalf("accepted %q as %#v", answer, id)
		}
	})
}

func FuzzParseWallet(f *testing.F) {
	f.Add([]byte(`{"walletId":"de4034f1-6b0f-4a98-87a5-e459db4d3a03"}`))
	f.Add([]byte(`{"walletId":7}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, answer []byte) {
		id, err := parseWallet(answer)
		if err == nil && id == "" {
			t.Fatalf("accepted %q without a wallet id", answer)
		}
	})
}
