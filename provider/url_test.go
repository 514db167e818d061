package provider_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/introspect"
	"github.com/sessiongate/sessiongate/provider/jwks"
	"github.com/sessiongate/sessiongate/provider/para"
	"github.com/sessiongate/sessiongate/provider/plurality"
)

func TestCheckURL(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		raw       string
		allowHTTP bool
		ok        bool
	}{
		"https":                     {"https://idp.example/api", false, true},
		"https, http allowed":       {"https://idp.example/api", true, true},
		"http":                      {"http://127.0.0.1:9/api", false, false},
		"http, allowed":             {"http://127.0.0.1:9/api", true, true},
		"scheme in capitals":        {"HTTPS://idp.example", false, true},
		"with userinfo":             {"https://u:p@idp.example/", false, true},
		"empty":                     {"", true, false},
		"relative path":             {"/relative", true, false},
		"no scheme":                 {"//idp.example/api", true, false},
		"word":                      {"staging", true, false},
		"ftp":                       {"ftp://idp.example", true, false},
		"no host":                   {"https:///path", true, false},
		"opaque":                    {"https:idp.example", true, false},
		"does not parse":            {"https://idp.example:port/", true, false},
		"control character":         {"https://idp.example/\x00", true, false},
		"http with https only":      {"http://idp.example", false, false},
		"javascript":                {"javascript:alert(1)", true, false},
		"host only, http(s) needed": {"idp.example", true, false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			u, err := provider.CheckURL(tc.raw, tc.allowHTTP)
			if !tc.ok {
				require.Error(t, err)
				assert.Nil(t, u)
				assert.Regexp(t, `^provider: `, err.Error())
				return
			}
			require.NoError(t, err)
			assert.NotEmpty(t, u.Host)
		})
	}
}

func TestCheckURLErrorsShowNoCredentials(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"ftp://alice:hunter2@idp.example/path?key=hunter2#hunter2",
		"http://alice:hunter2@idp.example/",       // http not allowed
		"https://alice:hunter2@/path",             // no host
		"https://alice:hunter2%zz@idp.example/",   // does not parse
		"https://alice:hunter2@idp.example:x/",    // does not parse
		"https:alice:hunter2@idp.example",         // opaque: no host
		"alice:hunter2@idp.example",               // scheme "alice"
		"https:///path?access_token=hunter2",      // no host, a key in the query
		"//alice:hunter2@/path",                   // no scheme
		"https://idp.example/\x7f?secret=hunter2", // does not parse
	} {
		_, err := provider.CheckURL(raw, false)
		require.Error(t, err, raw)
		assert.NotContains(t, err.Error(), "hunter2", raw)
		assert.NotContains(t, err.Error(), "alice", raw)
	}
	_, err := provider.CheckURL("ftp://alice:hunter2@idp.example/keys", true)
	assert.EqualError(t, err, `provider: "ftp://idp.example/keys" is not an absolute http(s) URL`)
}

func TestConstructorsRefuseURLsWithoutShowingCredentials(t *testing.T) {
	t.Parallel()
	const bad = "ftp://alice:hunter2@idp.example/keys?key=hunter2"
	for name, build := range map[string]func(){
		"plurality":    func() { plurality.New(plurality.Config{BaseURL: bad, ClientID: "id", ClientSecret: "s"}) },
		"para":         func() { para.New(para.Config{BaseURL: bad, SecretAPIKey: "k"}) },
		"para JWT":     func() { para.NewJWT(para.Config{BaseURL: bad, APIKeyID: "k"}) },
		"introspect":   func() { introspect.New(introspect.Config{URL: bad, ClientID: "id", ClientSecret: "s"}) },
		"jwks JWKSURL": func() { jwks.New(jwks.Config{Issuer: "https://idp.example", JWKSURL: bad, Audiences: []string{"a"}}) },
		"jwks Issuer":  func() { jwks.New(jwks.Config{Issuer: bad, Audiences: []string{"a"}}) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				msg := fmt.Sprint(recover())
				assert.Contains(t, msg, "sessiongate/")
				assert.Contains(t, msg, "idp.example", "the message says which URL")
				assert.NotContains(t, msg, "hunter2")
				assert.NotContains(t, msg, "alice")
			}()
			build()
			t.Fatal("no panic")
		})
	}
	_, err := para.BaseURL(bad)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2")
}
