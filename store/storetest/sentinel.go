package storetest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// SentinelConfig tunes StartSentinel. The zero value is a set with no
// passwords and no write quorum.
type SentinelConfig struct {
	// MinReplicasToWrite is the primary's min-replicas-to-write (every
	// data node's, for the one promoted): it refuses writes unless that
	// many replicas are connected. 0 (the default): off.
	MinReplicasToWrite int
	// User and Password, when User is set, are an ACL user of every data
	// node, allowed everything, which the replicas and the sentinels use
	// too (the default user stays on, without a password, for Do).
	User, Password string
	// SentinelPassword, when set, is the sentinels' requirepass (the
	// sentinels use it among themselves). Default: none.
	SentinelPassword string
}

// SentinelSet is a Redis Sentinel deployment started for one test: a
// primary, two replicas and three sentinels monitoring the primary as
// Master, with a quorum of 2 and down-after-milliseconds 1000.
type SentinelSet struct {
	// Master is the name the sentinels monitor the primary by.
	Master string
	// Nodes are the data nodes: Nodes[0] is the first primary.
	Nodes []*Server
	// Sentinels are the three sentinels.
	Sentinels []*Server

	t   testing.TB
	cfg SentinelConfig
}

// StartSentinel starts a Sentinel set for t (see SentinelSet), stopped
// when t ends, and waits until every sentinel knows both replicas and the
// other two sentinels, so that a failover can start at once. It skips t
// when SKIP_REDIS is set, and fails it when redis-server is missing or a
// server does not start (as Start does). It comes up in a few seconds:
// most of it is the sentinels' discovery of one another (their hello
// messages go out every 2 s).
func StartSentinel(t testing.TB, cfg SentinelConfig) *SentinelSet {
	t.Helper()
	set := &SentinelSet{Master: "sessions", t: t, cfg: cfg}
	node := []string{"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
		"--min-replicas-to-write", strconv.Itoa(cfg.MinReplicasToWrite), "--min-replicas-max-lag", "10"}
	if cfg.User != "" {
		node = append(node, "--user", cfg.User, "on", ">"+cfg.Password, "~*", "&*", "+@all",
			"--masteruser", cfg.User, "--masterauth", cfg.Password)
	}
	primary := Start(t, node...)
	set.Nodes = append(set.Nodes, primary)
	for range 2 {
		set.Nodes = append(set.Nodes, Start(t, append(slices.Clone(node), "--replicaof", "127.0.0.1", port(primary.Addr))...))
	}
	set.waitUntil("the replicas are in sync", func() bool {
		for _, r := range set.Nodes[1:] {
			info, err := redis.String(r.Do("INFO", "replication"))
			if err != nil || !strings.Contains(info, "master_link_status:up") {
				return false
			}
		}
		info, err := redis.String(primary.Do("INFO", "replication"))
		return err == nil && strings.Contains(info, "connected_slaves:2")
	})

	for range 3 {
		set.Sentinels = append(set.Sentinels, set.startSentinel(primary.Addr))
	}
	set.waitUntil("every sentinel knows the replicas and the other sentinels", func() bool {
		for _, s := range set.Sentinels {
			replicas, err1 := redis.Values(s.Do("SENTINEL", "REPLICAS", set.Master))
			sentinels, err2 := redis.Values(s.Do("SENTINEL", "SENTINELS", set.Master))
			if err1 != nil || err2 != nil || len(replicas) != 2 || len(sentinels) != 2 {
				return false
			}
		}
		return true
	})
	return set
}

// startSentinel starts one sentinel monitoring the primary at addr.
func (set *SentinelSet) startSentinel(addr string) *Server {
	t := set.t
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("storetest: redis-server not found: install it (apt-get install redis-server), " +
			"or skip the Redis tests with " + SkipEnv + "=1")
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	host, p, _ := net.SplitHostPort(addr)
	conf := []string{
		"sentinel resolve-hostnames no",
		fmt.Sprintf("sentinel monitor %s %s %s 2", set.Master, host, p),
		fmt.Sprintf("sentinel down-after-milliseconds %s 1000", set.Master),
		fmt.Sprintf("sentinel failover-timeout %s 5000", set.Master),
		fmt.Sprintf("sentinel parallel-syncs %s 2", set.Master),
	}
	if set.cfg.User != "" {
		conf = append(conf, fmt.Sprintf("sentinel auth-user %s %s", set.Master, set.cfg.User),
			fmt.Sprintf("sentinel auth-pass %s %s", set.Master, set.cfg.Password))
	}
	if pw := set.cfg.SentinelPassword; pw != "" {
		conf = append(conf, "requirepass "+pw, "sentinel sentinel-pass "+pw)
		s.auth = []redis.DialOption{redis.DialPassword(pw)}
	}
	file := filepath.Join(s.dir, "sentinel.conf")
	if err := os.WriteFile(file, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		t.Fatalf("storetest: %v", err)
	}
	s.first = []string{file, "--sentinel"}
	s.startOnAPort(nil)
	return s
}

// URL is the set's Sentinel URL: the sentinels, the master name, and
// database 0, with the set's ACL user and sentinel password.
func (set *SentinelSet) URL() string {
	var q []string
	q = append(q, "master_name="+set.Master)
	for _, s := range set.Sentinels[1:] {
		q = append(q, "addr="+s.Addr)
	}
	if set.cfg.SentinelPassword != "" {
		q = append(q, "sentinel_password="+set.cfg.SentinelPassword)
	}
	user := ""
	if set.cfg.User != "" {
		user = set.cfg.User + ":" + set.cfg.Password + "@"
	}
	return "redis://" + user + set.Sentinels[0].Addr + "/0?" + strings.Join(q, "&")
}

// Primary returns the address of the primary, as the first sentinel that
// answers names it.
func (set *SentinelSet) Primary() string {
	set.t.Helper()
	for _, s := range set.Sentinels {
		if addr, err := redis.Strings(s.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", set.Master)); err == nil && len(addr) == 2 {
			return net.JoinHostPort(addr[0], addr[1])
		}
	}
	set.t.Fatal("storetest: no sentinel names the primary")
	return ""
}

// Node returns the data node at addr.
func (set *SentinelSet) Node(addr string) *Server {
	set.t.Helper()
	for _, n := range set.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	set.t.Fatalf("storetest: no data node at %s", addr)
	return nil
}

// KillPrimary kills the primary's process, as a crash would, and returns
// its address.
func (set *SentinelSet) KillPrimary() string {
	set.t.Helper()
	addr := set.Primary()
	set.Node(addr).Stop()
	return addr
}

// Failover asks a sentinel for a graceful failover (SENTINEL FAILOVER):
// a replica is promoted while the old primary, still running, keeps
// accepting writes until the sentinels turn it into a replica. It returns
// the old primary's address.
func (set *SentinelSet) Failover() string {
	set.t.Helper()
	addr := set.Primary()
	if _, err := set.Sentinels[0].Do("SENTINEL", "FAILOVER", set.Master); err != nil {
		set.t.Fatalf("storetest: SENTINEL FAILOVER: %v", err)
	}
	return addr
}

// WaitForNewPrimary waits until every sentinel names a primary other than
// old, and that server says it is a primary, and returns its address.
func (set *SentinelSet) WaitForNewPrimary(old string) string {
	set.t.Helper()
	var addr string
	set.waitUntil("a new primary", func() bool {
		addr = ""
		for _, s := range set.Sentinels {
			reply, err := redis.Strings(s.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", set.Master))
			if err != nil || len(reply) != 2 {
				if !s.running() {
					continue
				}
				return false
			}
			a := net.JoinHostPort(reply[0], reply[1])
			if a == old || addr != "" && a != addr {
				return false
			}
			addr = a
		}
		if addr == "" {
			return false
		}
		role, err := redis.Values(set.Node(addr).Do("ROLE"))
		return err == nil && len(role) > 0 && fmt.Sprint(string(role[0].([]byte))) == "master"
	})
	return addr
}

// waitUntil polls ok until it holds, failing the test after startTimeout.
func (set *SentinelSet) waitUntil(what string, ok func() bool) {
	set.t.Helper()
	deadline := time.Now().Add(startTimeout)
	for !ok() {
		if time.Now().After(deadline) {
			set.t.Fatalf("storetest: Sentinel set: waited %v for %s", startTimeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running reports whether s's process has not exited.
func (s *Server) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return s.cmd != nil
	}
}

// port returns addr's port.
func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
