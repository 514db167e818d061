package redisstore

import (
	"context"
	"crypto/hmac"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/gomodule/redigo/redis"

	"github.com/sessiongate/sessiongate/internal/backend"
)

// Check reports whether this Redis can keep sessions, in one round trip
// plus one write: it must be a Redis server (not a Sentinel), not a
// cluster node (Open's cluster=true URLs have a store of their own), a
// primary (a replica refuses the
// writes of sign-in and sign-out), with maxmemory-policy noeviction
// (unless Options.InsecureAllowEviction), and not full (with
// noeviction, a full Redis refuses sign-ins and sign-outs). It then
// compares the secret's fingerprint with the one kept at sg:fingerprint,
// which the first process to claim it records (SET NX, no expiry): to
// change the secret of every process, stop them all and delete that key.
// The Redis user needs INFO for the first checks; without it, the write
// still tells a replica or a full Redis.
func (r *redisStore) Check(ctx context.Context, fingerprint []byte, claim bool) error {
	var problem error
	err := r.with(ctx, func(conn redis.Conn) error {
		info, err := redis.String(do(conn, ctx, "INFO", "server", "replication", "cluster", "memory"))
		if err != nil && !isReply(err) {
			return err
		}
		if problem = r.problemOf(info); problem != nil {
			return nil
		}
		// One script, as sign-in and sign-out run theirs, that writes, as
		// they do: whatever refuses either (no right to run scripts, a
		// replica, a full Redis, too few replicas, a failed snapshot)
		// refuses this check too.
		flag := "0"
		if claim {
			flag = "1"
		}
		stored, err := redis.Bytes(checkScript.DoContext(ctx, conn, healthKey, sessionPrefix+healthMember, userPrefix+healthMember,
			fingerprintKey, flag, fingerprint, healthMember))
		switch {
		case errors.Is(err, redis.ErrNil):
			return nil // recorded now, or none to compare with
		case isReply(err, "READONLY"):
			problem = errReplica
		case isReply(err, "OOM"):
			problem = errFull
		case isReply(err, "NOPERM") || isReply(err, "ERR") && (strings.Contains(err.Error(), "user executing the script") || strings.Contains(err.Error(), "permission")):
			// Redis 7.0 reports a script's forbidden command or key as ERR.
			problem = misconfigured("the Redis user may not run a script, a command or write a key (sg:s:*, sg:u:*) that sign-in and sign-out need")
		case isReply(err, "NOREPLICAS", "MISCONF", "NOSCRIPT", "BUSY", "LOADING", "MASTERDOWN"):
			code, _, _ := strings.Cut(err.Error(), " ")
			problem = &redisError{msg: "store: unavailable: redis: Redis refuses writes now (" + code + "): sign-ins and sign-outs fail", kind: []error{backend.ErrUnavailable}}
		case err != nil:
			return err
		case !hmac.Equal(stored, fingerprint):
			problem = backend.ErrSecretMismatch
		}
		return nil
	})
	if err != nil {
		return err
	}
	if problem == nil {
		problem = r.near.problem(ctx)
	}
	return problem
}

// healthKey is the key Check writes, to see that writes go through, and
// healthMember the session key and user it writes in the keyspaces of
// sessions and of users' indexes.
const (
	healthKey    = "sg:health"
	healthMember = "health-check"
)

// checkScript writes what a mint and a sign-out write, with the commands
// they use, on keys of the same patterns (KEYS[1] to KEYS[3], removed
// again), so that a Redis user without the rights sign-in needs fails it;
// then it records the secret's fingerprint ARGV[2] at KEYS[4] unless one
// is there (ARGV[1] = "1") and answers the one that was there, or only
// reads it (ARGV[1] = "0").
var checkScript = redis.NewScript(4, `
redis.call('SET', KEYS[1], '1', 'PX', 60000)
redis.call('SET', KEYS[2], '1', 'PX', 60000)
redis.call('GETRANGE', KEYS[2], 0, 0)
redis.call('ZADD', KEYS[3], 1, ARGV[3])
redis.call('ZRANGE', KEYS[3], 0, '+inf', 'BYSCORE')
redis.call('PEXPIREAT', KEYS[3], 1, 'GT')
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', 0)
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('DEL', KEYS[2], KEYS[3])
if ARGV[1] == '1' then return redis.call('SET', KEYS[4], ARGV[2], 'NX', 'GET') end
return redis.call('GET', KEYS[4])`)

var (
	errSentinel = misconfigured("the server is a Redis Sentinel, not a Redis server: " +
		"add ?master_name=NAME (the name the sentinels monitor the primary by) to the URL, and open it with redisstore.Open")
	errCluster = misconfigured("the server is a Redis Cluster node: add ?cluster=true to the URL, and open it with redisstore.Open")
	errReplica = misconfigured("the server is a read-only replica: sign-in and sign-out write, so point the store at the primary")
	errFull    = &redisError{
		msg: "store: unavailable: redis: Redis is full (used memory above maxmemory, policy noeviction): " +
			"sign-ins and sign-outs fail until memory is freed or maxmemory raised",
		kind: []error{backend.ErrUnavailable},
	}
)

// problemOf returns what INFO's fields say is wrong with the server for
// sessions, or nil. Fields INFO did not report are not judged.
func (r *redisStore) problemOf(info string) error {
	switch mode, _ := infoField(info, "redis_mode"); mode {
	case "sentinel":
		return errSentinel
	case "cluster":
		return errCluster
	}
	if enabled, _ := infoField(info, "cluster_enabled"); enabled == "1" {
		return errCluster
	}
	if role, ok := infoField(info, "role"); ok && role != "master" {
		return errReplica
	}
	return memoryProblem(info, r.opts.InsecureAllowEviction)
}

// memoryProblem returns what INFO memory's fields say is wrong for
// sessions: an eviction policy (unless allowEviction), or a full Redis.
func memoryProblem(info string, allowEviction bool) error {
	if policy, ok := infoField(info, "maxmemory_policy"); ok && !allowEviction {
		if err := evictionProblem(policy); err != nil {
			return err
		}
	}
	limit, _ := strconv.ParseInt(infoValue(info, "maxmemory"), 10, 64)
	used, _ := strconv.ParseInt(infoValue(info, "used_memory"), 10, 64)
	uncounted, _ := strconv.ParseInt(infoValue(info, "mem_not_counted_for_evict"), 10, 64)
	if limit > 0 && used-uncounted > limit {
		return errFull
	}
	return nil
}

// vet checks a new connection before its first use: a Sentinel or a
// cluster node is refused, and so is (unless InsecureAllowEviction) a
// maxmemory-policy that may evict, or one that cannot be read (INFO
// memory, or CONFIG GET when INFO is refused). An error that is not
// Redis's answer is returned as it is, for with to judge.
func (r *redisStore) vet(ctx context.Context, c redis.Conn) error {
	info, err := redis.String(do(c, ctx, "INFO", "server", "memory"))
	switch {
	case isReply(err):
		return r.vetPolicy(ctx, c)
	case err != nil:
		return err
	}
	switch mode, _ := infoField(info, "redis_mode"); mode {
	case "sentinel":
		return errSentinel
	case "cluster":
		return errCluster
	}
	if r.opts.InsecureAllowEviction {
		return nil
	}
	policy, _ := infoField(info, "maxmemory_policy")
	return evictionProblem(policy)
}

// vetPolicy reads the eviction policy with CONFIG GET, for a Redis user
// that may not run INFO.
func (r *redisStore) vetPolicy(ctx context.Context, c redis.Conn) error {
	if r.opts.InsecureAllowEviction {
		return nil
	}
	reply, err := redis.Strings(do(c, ctx, "CONFIG", "GET", "maxmemory-policy"))
	switch {
	case isReply(err):
		return misconfigured("maxmemory-policy cannot be read: the Redis user may run neither INFO nor CONFIG GET; " +
			"allow one of them, or set Options.InsecureAllowEviction")
	case err != nil:
		return err
	}
	policy := ""
	if len(reply) == 2 {
		policy = reply[1]
	}
	return evictionProblem(policy)
}

// evictionPolicies are Redis's maxmemory-policy values that may evict.
var evictionPolicies = []string{
	"volatile-lru", "allkeys-lru", "volatile-lfu", "allkeys-lfu", "volatile-random", "allkeys-random", "volatile-ttl",
}

// evictionProblem returns nil for noeviction, and for any other policy an
// error that says it must be noeviction. Only known policy names are
// quoted.
func evictionProblem(policy string) error {
	if policy == "noeviction" {
		return nil
	}
	is := "cannot be read"
	if slices.Contains(evictionPolicies, policy) {
		is = "is " + policy
	}
	return misconfigured("maxmemory-policy " + is + ", but it must be noeviction: an evicting Redis forgets sessions " +
		"and the marks that keep signed-out tokens from signing in again (or set Options.InsecureAllowEviction)")
}

// isReply reports whether err is an error Redis answered, with one of
// codes as its error code when any are given.
func isReply(err error, codes ...string) bool {
	var reply redis.Error
	if !errors.As(err, &reply) {
		return false
	}
	code, _, _ := strings.Cut(string(reply), " ")
	return len(codes) == 0 || slices.Contains(codes, code)
}

// infoField returns the value of a field of an INFO reply.
func infoField(info, name string) (string, bool) {
	for line := range strings.Lines(info) {
		if k, v, ok := strings.Cut(strings.TrimRight(line, "\r\n"), ":"); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// infoValue is infoField's value alone.
func infoValue(info, name string) string {
	v, _ := infoField(info, name)
	return v
}
