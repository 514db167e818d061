package redisstore_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"time"

	"github.com/sessiongate/sessiongate/store/redisstore"
)

// One pool per process, shared by every store on it; New must see the
// pool before it is used.
func ExampleNew() {
	pool, err := redisstore.NewPool("redis://127.0.0.1:6379/0")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	st := redisstore.New(pool, redisstore.Options{})
	_ = st // middleware.Config{Store: st, ...}; then auth.Check(ctx) at start
}

// NewPool checks the URL and makes no connection yet. Options set a
// deadline of 1 s per operation; a pool capped at 32 connections makes
// operations wait their turn, within that deadline.
func ExampleNewPool() {
	pool, err := redisstore.NewPool("rediss://app:secret@redis.internal:6380/2")
	if err != nil {
		log.Fatal(err) // says what is wrong with the URL, never quotes it
	}
	defer pool.Close()
	pool.MaxActive = 32 // Wait is set: beyond 32, operations queue
	st := redisstore.New(pool, redisstore.Options{Timeout: time.Second})
	_ = st // middleware.Config{Store: st, ...}
}

// Open serves a Sentinel set (here), a single Redis or a Cluster, as its
// URL says, over TLS with rediss:// and Options.TLS. It connects once: a
// URL that does not match the servers fails here, with a sentence; the
// store it hands back with that error reports the problem in its Check
// (/healthz) until it is fixed.
func ExampleOpen() {
	url := "rediss://app:secret@sentinel-1:26379/0?master_name=sessions" +
		"&addr=sentinel-2:26379&addr=sentinel-3:26379&sentinel_password=sentinel-secret"
	roots := x509.NewCertPool() // the CA that signed the servers' certificates
	st, err := redisstore.Open(url, redisstore.Options{TLS: &tls.Config{RootCAs: roots}})
	if st == nil {
		log.Fatal(err) // a malformed URL: what is wrong with it, never the URL
	}
	defer st.(io.Closer).Close() // stops the Sentinel watchers
	if err != nil {
		log.Print(err) // unreachable, or not what the URL says
	}
	// middleware.Config{Store: st, ...}
}

// A near cache serves the sessions an instance reads from its memory,
// kept fresh by Redis's announcements of changes: a steady request costs
// no round trip, and a session signed out anywhere stops being served
// within Fence. Strict makes each sign-out answer only once that holds on
// every instance. Close stops the invalidation link (and, for Open's
// store, the pool).
func ExampleNearCache() {
	st, err := redisstore.Open("redis://127.0.0.1:6379/0", redisstore.Options{
		NearCache: &redisstore.NearCache{
			MaxEntries: 50_000,                 // default 100,000
			MaxBytes:   32 << 20,               // default 64 MiB
			Fence:      100 * time.Millisecond, // the default
			Strict:     true,
		},
	})
	if st == nil {
		log.Fatal(err) // a malformed URL, or a Cluster URL (not supported)
	}
	defer st.(io.Closer).Close()
	if err != nil {
		log.Print(err) // unreachable, or not what the URL says
	}
	// middleware.Config{Store: st, ...}
}
