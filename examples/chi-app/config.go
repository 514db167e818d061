package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/para"
)

// config is the app's configuration, read from the environment variables
// of DESIGN.md.
type config struct {
	Addr        string
	MetricsAddr string // empty: no metrics listener
	Store       string // memory | redis
	RedisURL    string
	// RedisTLSCAFile, RedisTLSCertFile and RedisTLSKeyFile are PEM files
	// for a rediss:// REDIS_URL: the CA that signed the servers'
	// certificates (default: the system's roots), and a client
	// certificate with its key (default: none). Only their names are
	// kept here; redisTLS reads them.
	RedisTLSCAFile   string
	RedisTLSCertFile string
	RedisTLSKeyFile  string
	Provider         string   // dev | plurality | para | parajwt, or a comma list of the last three
	Providers        []string // Provider split, para (the catch-all) last
	PluralityURL     string
	PluralityID      string
	PluralitySecret  provider.Secret
	ParaURL          string
	ParaSecretKey    provider.Secret
	ParaJWTAudience  string
	CookieSecure     bool
	Lifetime         time.Duration
	IdleTimeout      time.Duration
	StepUpMaxAge     time.Duration // 0: no step-up on the sign-out-everywhere routes
	MaxPerUser       int           // 0: no limit
	AdminAddr        string        // empty: no back-office listener
	AdminToken       provider.Secret
	Secret           provider.Secret
	SecretWasDefault bool
}

// configFrom reads the configuration through getenv, filling defaults.
// defaultAddr is where the app listens when ADDR is unset.
const defaultAddr = "127.0.0.1:8080"

func configFrom(getenv func(string) string) (config, error) {
	// An empty variable is an unset one (docker compose passes ${X:-} as
	// empty): the default applies.
	get := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	c := config{
		Addr:             get("ADDR", defaultAddr),
		MetricsAddr:      getenv("METRICS_ADDR"),
		Store:            get("SESSION_STORE", "memory"),
		RedisURL:         get("REDIS_URL", "redis://127.0.0.1:6379/0"),
		RedisTLSCAFile:   getenv("REDIS_TLS_CA_FILE"),
		RedisTLSCertFile: getenv("REDIS_TLS_CERT_FILE"),
		RedisTLSKeyFile:  getenv("REDIS_TLS_KEY_FILE"),
		Provider:         get("PROVIDER", "dev"),
		PluralityURL:     get("PLURALITY_API_URL", "https://app.plurality.network/api"),
		PluralityID:      getenv("PLURALITY_CLIENT_ID"),
		PluralitySecret:  provider.Secret(getenv("PLURALITY_CLIENT_SECRET")),
		ParaURL:          getenv("PARA_API_URL"),
		ParaSecretKey:    provider.Secret(getenv("PARA_SECRET_API_KEY")),
		ParaJWTAudience:  getenv("PARA_JWT_AUDIENCE"),
		Secret:           provider.Secret(getenv("SESSION_SECRET")),
		AdminAddr:        getenv("ADMIN_ADDR"),
		AdminToken:       provider.Secret(getenv("ADMIN_TOKEN")),
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
	// Step-up is on by default: signing out every other device needs a
	// sign-in of the last 15 minutes (OWASP ASVS 5.0 V7.5).
	if c.StepUpMaxAge, err = time.ParseDuration(get("SESSION_STEP_UP_MAX_AGE", "15m")); err != nil || c.StepUpMaxAge < 0 ||
		c.StepUpMaxAge > 0 && c.StepUpMaxAge < time.Second {
		return c, fmt.Errorf("SESSION_STEP_UP_MAX_AGE: want a duration of at least 1s such as 15m, or 0 for none")
	}
	if c.MaxPerUser, err = strconv.Atoi(get("SESSION_MAX_PER_USER", "0")); err != nil || c.MaxPerUser < 0 {
		return c, fmt.Errorf("SESSION_MAX_PER_USER: want a whole number of sessions, or 0 for no limit")
	}
	switch {
	case (c.AdminAddr == "") != (c.AdminToken == ""):
		return c, fmt.Errorf("ADMIN_ADDR and ADMIN_TOKEN: set both to serve the back-office API, or neither")
	case c.AdminAddr != "" && len(c.AdminToken) < 16:
		return c, fmt.Errorf("ADMIN_TOKEN: want at least 16 bytes")
	}
	if _, _, err := net.SplitHostPort(c.AdminAddr); c.AdminAddr != "" && err != nil {
		return c, fmt.Errorf("ADMIN_ADDR: want host:port, such as 127.0.0.1:9091")
	}
	if _, _, err := net.SplitHostPort(c.MetricsAddr); c.MetricsAddr != "" && err != nil {
		return c, fmt.Errorf("METRICS_ADDR: want host:port, such as 127.0.0.1:9090")
	}
	switch c.Store {
	case "memory", "redis":
	default:
		return c, fmt.Errorf("SESSION_STORE: want memory or redis, got %q", c.Store)
	}
	if _, err := c.redisTLS(); err != nil {
		return c, err
	}
	if c.Providers, err = providerList(c.Provider); err != nil {
		return c, err
	}
	for _, p := range c.Providers {
		switch p {
		case "plurality":
			if c.PluralityID == "" || c.PluralitySecret == "" {
				return c, fmt.Errorf("PROVIDER=plurality needs PLURALITY_CLIENT_ID and PLURALITY_CLIENT_SECRET")
			}
			if _, err := url.ParseRequestURI(c.PluralityURL); err != nil {
				return c, fmt.Errorf("PLURALITY_API_URL: want an absolute URL")
			}
		case "para":
			if c.ParaSecretKey == "" {
				return c, fmt.Errorf("PROVIDER=para needs PARA_SECRET_API_KEY")
			}
		case "parajwt":
			if c.ParaJWTAudience == "" {
				return c, fmt.Errorf("PROVIDER=parajwt needs PARA_JWT_AUDIENCE (the API key's id, the aud of its JWTs)")
			}
		}
		if p == "para" || p == "parajwt" {
			if c.ParaURL, err = para.BaseURL(c.ParaURL); err != nil {
				return c, fmt.Errorf("PARA_API_URL: want BETA, PROD or an absolute URL")
			}
		}
	}
	if c.Secret == "" {
		// The middleware draws a random one, which it never records as the
		// store's fingerprint: it belongs to this process alone.
		c.SecretWasDefault = true
	} else if len(c.Secret) < 16 {
		return c, fmt.Errorf("SESSION_SECRET: want at least 16 bytes")
	}
	return c, nil
}

// providerList splits PROVIDER: "dev" alone, or one or more of plurality,
// para and parajwt, with para moved last (it takes every token the others
// do not claim). para and parajwt cannot be combined: both are Para, and
// their user ids differ.
func providerList(v string) ([]string, error) {
	if v == "dev" {
		return []string{"dev"}, nil
	}
	var list []string
	hasPara := false
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		switch {
		case p == "para":
			hasPara = true
			continue
		case p != "plurality" && p != "parajwt":
			return nil, fmt.Errorf("PROVIDER: want dev, plurality, para or parajwt (or a comma list of the last three), got %q", v)
		case slices.Contains(list, p):
			return nil, fmt.Errorf("PROVIDER: %s is listed twice", p)
		}
		list = append(list, p)
	}
	if hasPara {
		if slices.Contains(list, "parajwt") {
			return nil, fmt.Errorf("PROVIDER: para and parajwt cannot be combined; choose verification tokens or JWTs")
		}
		list = append(list, "para")
	}
	return list, nil
}

// redisTLS returns the TLS settings of REDIS_TLS_CA_FILE,
// REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE for redisstore.Open, or nil
// when none is set (a rediss:// URL then trusts the system's roots). Its
// errors name the variable and what is wrong, never a file's content.
func (c config) redisTLS() (*tls.Config, error) {
	if c.RedisTLSCAFile == "" && c.RedisTLSCertFile == "" && c.RedisTLSKeyFile == "" {
		return nil, nil
	}
	if !strings.HasPrefix(c.RedisURL, "rediss://") {
		return nil, errors.New("REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE need a rediss:// REDIS_URL")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.RedisTLSCAFile != "" {
		pem, err := os.ReadFile(c.RedisTLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("REDIS_TLS_CA_FILE: cannot read the file: %w", errors.Unwrap(err))
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New("REDIS_TLS_CA_FILE: no PEM certificate in the file")
		}
	}
	if (c.RedisTLSCertFile == "") != (c.RedisTLSKeyFile == "") {
		return nil, errors.New("REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together: set both or neither")
	}
	if c.RedisTLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.RedisTLSCertFile, c.RedisTLSKeyFile)
		if err != nil {
			return nil, errors.New("REDIS_TLS_CERT_FILE, REDIS_TLS_KEY_FILE: not a readable PEM certificate and its private key")
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
