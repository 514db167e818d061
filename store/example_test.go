package store_test

import (
	"fmt"
	"log"
	"time"

	"github.com/sessiongate/sessiongate/store"
)

// NewManager gives scs's session manager what sessiongate needs; change
// its lifetime and cookie as with any scs manager.
func ExampleNewManager() {
	sm := store.NewManager(store.NewMemory())
	sm.Lifetime = 12 * time.Hour
	sm.Cookie.Name = "__Host-session"
	fmt.Println(sm.Cookie.HttpOnly, sm.Cookie.Secure, sm.HashTokenInStore)
	// Output: true true false
}

// On Redis: one pool per process, shared by every store on it. NewRedis
// must see the pool before it is used.
func ExampleNewRedis() {
	pool, err := store.NewRedisPool("redis://127.0.0.1:6379/0")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	sm := store.NewManager(store.NewRedis(pool))
	_ = sm // middleware.Config{Sessions: sm, ...}
}

// NewRedisWith takes options: here a deadline of 1 s per operation. A
// pool capped at 32 connections makes operations wait their turn, within
// that deadline.
func ExampleNewRedisWith() {
	pool, err := store.NewRedisPool("redis://127.0.0.1:6379/0")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	pool.MaxActive = 32 // Wait is set: beyond 32, operations queue
	st := store.NewRedisWith(pool, store.RedisOptions{Timeout: time.Second})
	sm := store.NewManager(st)
	_ = sm // middleware.Config{Sessions: sm, ...}; then auth.Check(ctx) at start
}

// Codec encodes what handlers put in the session; common types have a
// compact form of their own.
func ExampleCodec() {
	c := store.Codec{}
	b, err := c.Encode(time.UnixMilli(1_790_000_000_000), map[string]any{"cart": "3 items", "visits": 7})
	if err != nil {
		log.Fatal(err)
	}
	deadline, values, err := c.Decode(b)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(b), deadline.UTC().Format(time.RFC3339), values["cart"], values["visits"])
	// Output: 32 2026-09-21T14:13:20Z 3 items 7
}

// A session token is a selector, the store key, and a validator, of which
// the store keeps only a hash.
func ExampleToken() {
	var selector, validator [16]byte
	copy(selector[:], "selector-1234567")
	token := store.Token(selector, validator)
	fmt.Println(len(token), store.Key(token) == store.KeyOf(selector))
	// Output: 43 true
}
