package introspect

import (
	"testing"
	"time"
)

func FuzzIdentity(f *testing.F) {
	f.Add([]byte(`{"active":true,"sub":"ada","exp":4102444800}`))
	f.Add([]byte(`{"active":false}`))
	f.Add([]byte(`{"active":true,"sub":7,"aud":["a","orders"],"nbf":1}`))
	f.Add([]byte(`[true]`))
	f.Add([]byte(`null`))
	p := New(Config{URL: "http://127.0.0.1:1/i", ClientID: "a", ClientSecret: "b", Audiences: []string{"orders"},
		Now: func() time.Time { return time.Unix(1700000000, 0) }})
	f.Fuzz(func(t *testing.T, answer []byte) {
		id, err := p.identity(answer)
		if err == nil && (id == nil || id.UserID == "" || id.Claims["active"] != true) {
			t.Fatalf("accepted %q as %#v", answer, id)
		}
	})
}
