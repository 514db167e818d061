package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"time"

	"github.com/sessiongate/sessiongate/provider"
)

// config is the app's configuration, read from the environment variables
// of DESIGN.md.
type config struct {
	Addr             string
	Store            string // memory | redis
	RedisURL         string
	Provider         string // dev | plurality | para | parajwt
	PluralityURL     string
	PluralityID      string
	PluralitySecret  provider.Secret
	ParaURL          string
	ParaSecretKey    provider.Secret
	ParaJWTAudience  string
	CookieSecure     bool
	Lifetime         time.Duration
	IdleTimeout      time.Duration
	Secret           provider.Secret
	SecretWasDefault bool
}

// configFrom reads the configuration through getenv, filling defaults.
func configFrom(getenv func(string) string) (config, error) {
	get := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	c := config{
		Addr:            get("ADDR", "127.0.0.1:8080"),
		Store:           get("SESSION_STORE", "memory"),
		RedisURL:        get("REDIS_URL", "redis://127.0.0.1:6379/0"),
		Provider:        get("PROVIDER", "dev"),
		PluralityURL:    get("PLURALITY_API_URL", "https://app.plurality.network/api"),
		PluralityID:     getenv("PLURALITY_CLIENT_ID"),
		PluralitySecret: provider.Secret(getenv("PLURALITY_CLIENT_SECRET")),
		ParaURL:         getenv("PARA_API_URL"),
		ParaSecretKey:   provider.Secret(getenv("PARA_SECRET_API_KEY")),
		ParaJWTAudience: getenv("PARA_JWT_AUDIENCE"),
		Secret:          provider.Secret(getenv("SESSION_SECRET")),
	}
	var err error
	// Dev mode serves plain http on loopback; everything else is assumed
	// to sit behind TLS.
	if c.CookieSecure, err = strconv.ParseBool(get("COOKIE_SECURE", strconv.FormatBool(c.Provider != "dev"))); err != nil {
		return c, fmt.Errorf("COOKIE_SECURE: %w", err)
	}
	if c.Lifetime, err = time.ParseDuration(get("SESSION_LIFETIME", "24h")); err != nil || c.Lifetime <= 0 {
		return c, fmt.Errorf("SESSION_LIFETIME: want a positive duration such as 24h")
	}
	if c.IdleTimeout, err = time.ParseDuration(get("SESSION_IDLE_TIMEOUT", "0s")); err != nil || c.IdleTimeout < 0 {
		return c, fmt.Errorf("SESSION_IDLE_TIMEOUT: want a duration such as 30m, or 0 for none")
	}
	switch c.Store {
	case "memory", "redis":
	default:
		return c, fmt.Errorf("SESSION_STORE: want memory or redis, got %q", c.Store)
	}
	switch c.Provider {
	case "dev":
	case "plurality":
		if c.PluralityID == "" || c.PluralitySecret == "" {
			return c, fmt.Errorf("PROVIDER=plurality needs PLURALITY_CLIENT_ID and PLURALITY_CLIENT_SECRET")
		}
	case "para", "parajwt":
		return c, fmt.Errorf("PROVIDER=%s is not available yet", c.Provider)
	default:
		return c, fmt.Errorf("PROVIDER: want dev, plurality, para or parajwt, got %q", c.Provider)
	}
	if c.Secret == "" {
		b := make([]byte, 32)
		rand.Read(b)
		c.Secret = provider.Secret(base64.RawURLEncoding.EncodeToString(b))
		c.SecretWasDefault = true
	} else if len(c.Secret) < 16 {
		return c, fmt.Errorf("SESSION_SECRET: want at least 16 bytes")
	}
	return c, nil
}
