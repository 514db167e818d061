package provider

import (
	"fmt"
	"net/url"
)

// CheckURL parses raw, an upstream address from a configuration or from
// an upstream's own document, and accepts it only when it is absolute: an
// https scheme (or http, when allowHTTP) and a host. Every provider checks
// its URLs with it, once, where it is configured or read.
//
// allowHTTP is the only way plain http gets through. The providers allow
// it for the URLs their Config names (a loopback fake, a development
// issuer), and jwks allows it for a discovered key set only when the
// issuer itself is http.
//
// The error starts with "provider:" and never carries credentials: it
// shows the URL as scheme://host/path, without its userinfo, query or
// fragment, and not at all when raw does not parse or has no "//" (where
// "user:password@host" would be read as a scheme and an opaque part).
func CheckURL(raw string, allowHTTP bool) (*url.URL, error) {
	want := "https"
	if allowHTTP {
		want = "http(s)"
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		// url.Parse's error quotes raw, credentials and all.
		return nil, fmt.Errorf("provider: the URL does not parse, so it is not an absolute %s URL", want)
	case u.Opaque != "":
		// "user:password@host" parses as scheme "user", opaque "password@host".
		return nil, fmt.Errorf("provider: the URL has no //host, so it is not an absolute %s URL", want)
	case (u.Scheme != "https" && (!allowHTTP || u.Scheme != "http")) || u.Host == "":
		shown := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
		return nil, fmt.Errorf("provider: %q is not an absolute %s URL", shown.String(), want)
	}
	return u, nil
}
