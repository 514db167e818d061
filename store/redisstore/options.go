package redisstore

import (
	"crypto/tls"
	"time"
)

// Options configures New and Open. The zero value is the default.
type Options struct {
	// Timeout bounds one store operation from start to end: waiting for a
	// pooled connection (when the pool's MaxActive is reached), dialling
	// one, its commands, and its one retry on a fresh connection. A
	// caller's context deadline that comes first bounds it too. When it
	// passes, the operation fails with store.ErrUnavailable ("timeout"),
	// and the middleware answers 503. Zero or less: the default, 2 s.
	//
	// With a store Open made, operations that wait for their turn at the
	// pool (all PoolSize connections busy) get it in the order they came,
	// and are woken at their deadline by one alarm they share, not by a
	// timer each: such a wait ends at most a sixteenth of Timeout (at
	// least 1 ms) after the operation's deadline. A caller's deadline
	// earlier than Timeout's ends it on time; a caller's cancellation is
	// seen when the wait ends, and the operation then borrows nothing.
	//
	// A command's reply is awaited until the operation's deadline; its
	// write, by the connection's write timeout, which the pools of Open
	// and NewPool set to Timeout (NewPool: the default): a Redis that
	// stops reading (stopped, or partitioned without a reset) fails a
	// large write within Timeout of its start, not the 30 s backstop.
	Timeout time.Duration

	// InsecureAllowEviction lets the store run on a Redis whose
	// maxmemory-policy may evict keys (anything but noeviction). Redis
	// would then forget sessions, and the marks that stop signed-out
	// frontend tokens from minting again, when it is full: a token signed
	// out could sign in again. Default false: every new connection reads
	// the policy (INFO memory, or CONFIG GET when INFO is not allowed), and
	// each operation on a Redis whose policy may evict, or whose policy
	// cannot be read, fails with store.ErrMisconfigured saying that the
	// policy must be noeviction. A policy changed at runtime is seen within
	// RecheckInterval.
	InsecureAllowEviction bool

	// RecheckInterval is how often the store checks again, on a pooled
	// connection, what it checks on each new one (not a Sentinel or a
	// cluster node; the eviction policy): a Redis reconfigured at runtime
	// (CONFIG SET maxmemory-policy allkeys-lru) is refused within this
	// long. It costs one INFO per interval. Zero or less: the default, 5 s.
	RecheckInterval time.Duration

	// TLS configures the connections of a rediss:// URL given to Open (to
	// the server, the sentinels and the cluster's nodes alike): the CA pool
	// that verifies their certificates (RootCAs), a client certificate
	// (Certificates) for servers that ask for one (tls-auth-clients), and
	// the name certificates must hold (ServerName). It is cloned per
	// connection, never changed. Nil (the default): the system's roots, no
	// client certificate. An empty ServerName (the default) is the host of
	// the address dialled, so that a certificate for each server's own
	// name or IP address verifies. Open refuses a TLS config with a
	// redis:// URL (plain, unencrypted), which would ignore it. New does
	// not read it: the pool dials.
	TLS *tls.Config

	// PoolSize is how many connections a store Open returns keeps to each
	// server it sends commands to (the single Redis, the Sentinel's
	// primary, each Cluster primary): at most this many are open at once
	// (the pool's MaxActive), and as many stay open when idle (MaxIdle),
	// so that a burst of concurrent requests never opens a connection
	// only to close it again when it returns (churn). An operation that
	// finds them all busy waits for one within its deadline (Timeout, or
	// its caller's context; see Timeout for how closely), then fails with
	// store.ErrUnavailable ("timeout"). The pools are the store's own: its
	// operations take turns in front of them (a turn, free or waited for,
	// costs no timer), so nothing else may borrow from them. Zero or less: the
	// default, DefaultPoolSize. New does not read it: it uses the pool it
	// is given as it is.
	PoolSize int

	// NearCache, when set, caches sessions in the process's memory,
	// kept fresh by Redis's announcements of changes (CLIENT TRACKING):
	// a request whose session is cached costs no round trip, and an
	// ended session stops being served within NearCache.Fence of its
	// sign-out, on every instance. Single Redis and Sentinel only. See
	// NearCache for what it guarantees and costs. Nil (the default): off,
	// every Lookup is a GET.
	NearCache *NearCache

	// sentinels is, for Open on Sentinel, the set whose primary the near
	// cache's link follows (sentinelSet.primaryNow), known to New before
	// it starts the link. (A pointer: Options stays comparable.)
	sentinels *sentinelSet
}

// DefaultPoolSize is Options.PoolSize's default, and NewPool's MaxActive
// and MaxIdle: 64 connections per server. Redis runs commands on one
// thread, and an operation holds its connection for one or two round
// trips (tens of microseconds on a local network), so a few dozen
// connections keep a server busy; more would only queue at Redis
// instead of in the pool. Each idle connection costs Redis about 20 KB.
const DefaultPoolSize = 64

// defaultRecheckInterval is Options.RecheckInterval's default.
const defaultRecheckInterval = 5 * time.Second

// defaultTimeout is Options.Timeout's default.
const defaultTimeout = 2 * time.Second

// withDefaults returns a copy of o with every unset field filled.
func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.RecheckInterval <= 0 {
		o.RecheckInterval = defaultRecheckInterval
	}
	if o.PoolSize <= 0 {
		o.PoolSize = DefaultPoolSize
	}
	return o
}
