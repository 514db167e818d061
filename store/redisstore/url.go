package redisstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// mode is the kind of Redis deployment a URL names.
type mode int

const (
	single   mode = iota // one Redis server
	sentinel             // a primary found through Redis Sentinel
	cluster              // Redis Cluster
)

// redisURL is a parsed Redis URL. Its fields hold credentials: it is
// never printed, and errors about it quote none of it.
type redisURL struct {
	mode   mode
	tls    bool     // rediss://
	addrs  []string // host:port: the server, the sentinels, or the cluster's seeds
	user   string   // the server's (the primary's, the cluster nodes') ACL user
	pass   string
	db     int
	master string // Sentinel: the primary's name, as the sentinels monitor it

	// Sentinel: the sentinels' own credentials (sentinel_username,
	// sentinel_password); none by default.
	sentinelUser, sentinelPass string
}

// urlForms is what an error about a Redis URL says it should look like.
const urlForms = "; want redis://[user:password@]host[:port][/db], " +
	"redis://[user:password@]sentinel:26379[/db]?master_name=NAME[&addr=sentinel2:26379...], " +
	"or redis://[user:password@]node:7000?cluster=true[&addr=node2:7000...] (rediss:// for TLS)"

// parseURL reads a Redis URL of any of urlForms. Its errors say what is
// wrong in words that quote no part of the URL (a URL that fails to parse
// may hold its password anywhere), except the name of an unknown query
// parameter when it is a plain word.
func parseURL(rawURL string) (*redisURL, error) {
	bad := func(what string) error { return errors.New("store: the Redis URL" + what + urlForms) }
	u, err := url.Parse(rawURL)
	switch {
	case err != nil:
		return nil, bad(" cannot be parsed")
	case u.Scheme != "redis" && u.Scheme != "rediss":
		return nil, bad(" does not start with redis:// or rediss://")
	case u.Opaque != "" || u.Host == "":
		return nil, bad(" has no host")
	case u.Hostname() == "":
		return nil, bad(" has no host name")
	case u.Fragment != "":
		return nil, bad(" has a fragment (#...)")
	}
	r := &redisURL{tls: u.Scheme == "rediss"}
	if u.User != nil {
		r.user = u.User.Username()
		r.pass, _ = u.User.Password()
	}
	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, bad(" has a query that cannot be parsed")
	}
	for name, values := range query {
		switch name {
		case "addr":
		case "master_name", "sentinel_username", "sentinel_password", "cluster":
			if len(values) > 1 {
				return nil, bad(" has " + name + " more than once")
			}
		default:
			if plainWord(name) {
				return nil, bad(fmt.Sprintf(" has an unknown query parameter %q (known: master_name, addr, sentinel_username, sentinel_password, cluster)", name))
			}
			return nil, bad(" has an unknown query parameter (known: master_name, addr, sentinel_username, sentinel_password, cluster)")
		}
	}
	_, isSentinel := query["master_name"]
	isCluster := false
	if v, ok := query["cluster"]; ok {
		if isCluster, err = strconv.ParseBool(v[0]); err != nil {
			return nil, bad(" has a cluster parameter that is neither true nor false")
		}
	}
	r.master = query.Get("master_name")
	r.sentinelUser, r.sentinelPass = query.Get("sentinel_username"), query.Get("sentinel_password")
	_, hasSentinelAuth := query["sentinel_username"]
	if _, ok := query["sentinel_password"]; ok {
		hasSentinelAuth = true
	}
	switch {
	case isSentinel && isCluster:
		return nil, bad(" has both master_name (Sentinel) and cluster=true (Cluster)")
	case isSentinel && r.master == "":
		return nil, bad(" has an empty master_name")
	case isSentinel:
		r.mode = sentinel
	case isCluster:
		r.mode = cluster
	case hasSentinelAuth:
		return nil, bad(" has sentinel_username or sentinel_password but no master_name")
	case len(query["addr"]) > 0:
		return nil, bad(" has addr but neither master_name (Sentinel) nor cluster=true (Cluster)")
	}
	if r.mode == cluster && hasSentinelAuth {
		return nil, bad(" has sentinel_username or sentinel_password with cluster=true")
	}
	defaultPort := "6379"
	if r.mode == sentinel {
		defaultPort = "26379"
	}
	for i, hostport := range append([]string{u.Host}, query["addr"]...) {
		addr, err := hostPort(hostport, defaultPort)
		if err != nil {
			if i == 0 {
				return nil, bad("'s host " + err.Error())
			}
			return nil, bad(fmt.Sprintf("'s addr number %d %s", i, err.Error()))
		}
		r.addrs = append(r.addrs, addr)
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if r.db, err = strconv.Atoi(db); err != nil || strings.TrimLeft(db, "0123456789") != "" {
			return nil, bad("'s path is not a database number such as /0")
		}
	}
	if r.mode == cluster && r.db != 0 {
		return nil, bad(" names a database other than 0, which Redis Cluster does not have")
	}
	return r, nil
}

// hostPort returns s as host:port, with port def when it has none, or
// what is wrong with it, quoting none of it.
func hostPort(s, def string) (string, error) {
	u, err := url.Parse("redis://" + s)
	switch {
	case s == "" || err != nil || u.Host != s || u.User != nil:
		return "", errors.New("is not host[:port]")
	case u.Hostname() == "":
		return "", errors.New("has no host name")
	}
	port := u.Port()
	if port == "" {
		port = def
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", errors.New("has a port that is not a number from 1 to 65535")
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// plainWord reports whether s is a short lower-case word (letters, digits,
// _ and -), safe to quote in an error: a query parameter's name may be a
// password pasted in the wrong place.
func plainWord(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// connectTimeout bounds a TCP (and TLS) connect: the operation's deadline,
// when earlier, bounds it too.
const connectTimeout = 2 * time.Second

// ioTimeout is the connections' own read timeout: only a backstop, each
// command's read being bounded by its operation's deadline.
const ioTimeout = 30 * time.Second

// dialOptions returns the options that dial a server of u (the Redis
// servers, not the sentinels) with its credentials, database and TLS.
// Each command's write is bounded by writeTimeout (the store's
// Options.Timeout): a command's read waits only until its operation's
// deadline, but its write is bounded by this alone, and a Redis that
// stops reading (stopped, partitioned) must not hold a large write for
// ioTimeout.
func (u *redisURL) dialOptions(tlsConfig *tls.Config, writeTimeout time.Duration) []redis.DialOption {
	opts := append(u.baseOptions(tlsConfig), redis.DialWriteTimeout(writeTimeout))
	if u.user != "" {
		opts = append(opts, redis.DialUsername(u.user))
	}
	if u.pass != "" {
		opts = append(opts, redis.DialPassword(u.pass))
	}
	if u.db != 0 {
		opts = append(opts, redis.DialDatabase(u.db))
	}
	return opts
}

// sentinelOptions returns the options that dial one of u's sentinels.
func (u *redisURL) sentinelOptions(tlsConfig *tls.Config) []redis.DialOption {
	opts := u.baseOptions(tlsConfig)
	if u.sentinelUser != "" {
		opts = append(opts, redis.DialUsername(u.sentinelUser))
	}
	if u.sentinelPass != "" {
		opts = append(opts, redis.DialPassword(u.sentinelPass))
	}
	return opts
}

// baseOptions are the timeouts and TLS every connection of u has. With
// TLS, redigo verifies the server's certificate against tlsConfig's roots
// (the system's when nil) for the host dialled, unless tlsConfig names a
// ServerName.
func (u *redisURL) baseOptions(tlsConfig *tls.Config) []redis.DialOption {
	opts := []redis.DialOption{
		redis.DialConnectTimeout(connectTimeout),
		redis.DialReadTimeout(ioTimeout),
		redis.DialWriteTimeout(ioTimeout), // the servers': dialOptions's
	}
	if u.tls {
		opts = append(opts, redis.DialUseTLS(true))
		if tlsConfig != nil {
			opts = append(opts, redis.DialTLSConfig(tlsConfig))
		}
	}
	return opts
}
