package redisstore_test

import (
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
