package plurality

import (
	"testing"
	"time"
)

func FuzzIdentity(f *testing.F) {
	f.Add([]byte(`{"valid":true}`), "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6ImEiLCJleHAiOjF9.sig")
	f.Add([]byte(`{"user":{"id":7}}`), "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2ln")
	f.Add([]byte(`[1,2]`), "a.b.c")
	f.Add([]byte(`null`), "a.e30.c")
	p := &Provider{now: func() time.Time { return time.Unix(0, 0) }}
	f.Fuzz(func(t *testing.T, answer []byte, raw string) {
		tok, err := parseToken(raw)
		if err != nil {
			return
		}
		id, err := p.identity(tok, answer)
		if err == nil && (id == nil || id.UserID == "" || id.TokenID == "") {
			t.Fatalf("an identity without a user id: %#v", id)
		}
	})
}
