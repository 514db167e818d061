package provider_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/introspect"
	"github.com/sessiongate/sessiongate/provider/jwks"
	"github.com/sessiongate/sessiongate/provider/para"
	"github.com/sessiongate/sessiongate/provider/plurality"
)

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	type config struct {
		Name   string
		Secret provider.Secret
	}
	cfg := config{Name: "n", Secret: "hunter2-hunter2"}
	js, err := json.Marshal(cfg)
	require.NoError(t, err)
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "cfg", cfg, "s", cfg.Secret)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "s", cfg.Secret)
	for _, s := range []string{
		fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%s", cfg.Secret),
		fmt.Sprintf("%q", cfg.Secret), fmt.Sprintf("%x", cfg.Secret), fmt.Sprint(cfg.Secret), string(js), logged.String(),
	} {
		assert.NotContains(t, s, "hunter2")
		assert.NotContains(t, s, fmt.Sprintf("%x", "hunter2"))
	}
	assert.Equal(t, "hunter2-hunter2", string(cfg.Secret), "the value is still there for those who convert it")
	assert.Equal(t, "", provider.Secret("").String())
}

// TestNoProviderPrintsItsSecrets prints every provider's Config and
// Provider with every verb, and through slog, looking for the secret and
// for what is derived from it (the Authorization header).
func TestNoProviderPrintsItsSecrets(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-hunter2+/"
	basic := func(id, secret string) string { return base64.StdEncoding.EncodeToString([]byte(id + ":" + secret)) }
	pluralityCfg := plurality.Config{ClientID: "id", ClientSecret: secret}
	introspectCfg := introspect.Config{URL: "https://as.example/introspect", ClientID: "id", ClientSecret: secret}
	paraCfg := para.Config{SecretAPIKey: secret, APIKeyID: "key-id"}
	jwksCfg := jwks.Config{Issuer: "https://idp.example", Audiences: []string{"a"}}
	pluralityP, introspectP, paraP := plurality.New(pluralityCfg), introspect.New(introspectCfg), para.New(paraCfg)
	for name, tc := range map[string]struct {
		config, provider any
		derived          []string
	}{
		"plurality":  {pluralityCfg, pluralityP, []string{basic("id", secret)}},
		"introspect": {introspectCfg, introspectP, []string{basic("id", url.QueryEscape(secret))}},
		"para":       {paraCfg, paraP, nil},
		"para JWT":   {paraCfg, para.NewJWT(paraCfg), nil},
		"jwks":       {jwksCfg, jwks.New(jwksCfg), nil},
		"multi": {nil, provider.NewMulti(
			provider.Route{Match: func(string) bool { return false }, Provider: pluralityP},
			provider.Route{Match: func(string) bool { return false }, Provider: introspectP},
			provider.Route{Provider: paraP},
		), []string{basic("id", secret), basic("id", url.QueryEscape(secret))}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var logged strings.Builder
			slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "cfg", tc.config, "provider", tc.provider)
			slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "provider", tc.provider)
			printed := []string{
				fmt.Sprintf("%v %+v %#v %s", tc.config, tc.config, tc.config, tc.config),
				fmt.Sprintf("%v %+v %#v %s", tc.provider, tc.provider, tc.provider, tc.provider),
				logged.String(),
			}
			if v := reflect.ValueOf(tc.provider); v.Kind() == reflect.Pointer {
				p := v.Elem().Interface() // the struct itself, fields one level down
				printed = append(printed, fmt.Sprintf("%v %+v %#v", p, p, p))
			}
			for _, s := range printed {
				assert.NotContains(t, s, "hunter2")
				for _, d := range tc.derived {
					assert.NotContains(t, s, d)
				}
			}
		})
	}
}
