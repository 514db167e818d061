package storetest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/mna/redisc"
)

// Cluster is a Redis Cluster of 6 redis-server processes started for one
// test: 3 primaries, each with 1 replica, on free loopback ports, with
// cluster-node-timeout 1000 (a primary killed is replaced within about
// 2 s) and cluster-require-full-coverage no (the other slots keep serving
// meanwhile). Every node is stopped when the test ends.
type Cluster struct {
	// Nodes are the 6 servers: Nodes[i] for i < 3 started as primaries,
	// Nodes[i+3] as Nodes[i]'s replica. Failovers change the roles: ask
	// Primary and ReplicaOf.
	Nodes []*Server

	t testing.TB
}

// clusterTimeout bounds how long StartCluster and the helpers wait for
// the cluster to agree: generous, it only ends a test whose cluster is
// broken.
const clusterTimeout = 60 * time.Second

// StartCluster starts a 6-node cluster for t and waits until every node
// sees every slot served (cluster_state:ok) and each replica has synced
// with its primary. extra are more redis-server arguments for every node.
// The slots are assigned and the nodes joined with CLUSTER commands
// (ADDSLOTSRANGE, SET-CONFIG-EPOCH, MEET, REPLICATE), without redis-cli.
// Like Start, it skips t when SKIP_REDIS is set.
func StartCluster(t testing.TB, extra ...string) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	for range 6 {
		c.Nodes = append(c.Nodes, Start(t, append([]string{
			"--cluster-enabled", "yes", "--cluster-node-timeout", "1000",
			"--cluster-require-full-coverage", "no", "--repl-diskless-sync-delay", "0",
			"--repl-diskless-sync", "yes", "--maxmemory-policy", "noeviction",
		}, extra...)...))
	}
	ids := make([]string, 6)
	for i, n := range c.Nodes {
		ids[i] = c.str(redis.String(n.Do("CLUSTER", "MYID")))
		c.must(n.Do("CLUSTER", "SET-CONFIG-EPOCH", i+1))
	}
	for i := range 3 {
		from, to := i*redisSlots/3, (i+1)*redisSlots/3-1
		c.must(c.Nodes[i].Do("CLUSTER", "ADDSLOTSRANGE", from, to))
	}
	host, port := splitAddr(t, c.Nodes[0].Addr)
	for _, n := range c.Nodes[1:] {
		c.must(n.Do("CLUSTER", "MEET", host, port))
	}
	for i := 3; i < 6; i++ {
		c.eventually(fmt.Sprintf("node %d to learn its primary", i), func() bool {
			_, err := c.Nodes[i].Do("CLUSTER", "REPLICATE", ids[i-3])
			return err == nil
		})
	}
	c.WaitHealthy()
	return c
}

// redisSlots is Redis Cluster's number of hash slots.
const redisSlots = 16384

// Addrs returns the host:port of every node.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr
	}
	return out
}

// Slot returns the hash slot of key.
func (c *Cluster) Slot(key string) int { return redisc.Slot(key) }

// Primary returns the node that serves slot, as the nodes still running
// agree, or nil when they name a node that is not running or do not
// agree yet.
func (c *Cluster) Primary(slot int) *Server {
	c.t.Helper()
	var owner *Server
	for _, n := range c.running() {
		o := c.ownerSeenBy(n, slot)
		if o == nil || owner != nil && o != owner {
			return nil
		}
		owner = o
	}
	return owner
}

// Owner returns the primary that serves key.
func (c *Cluster) Owner(key string) *Server {
	c.t.Helper()
	var owner *Server
	slot := c.Slot(key)
	c.eventually("the nodes to agree on slot "+strconv.Itoa(slot), func() bool { owner = c.Primary(slot); return owner != nil })
	return owner
}

// ReplicaOf returns a running replica of primary.
func (c *Cluster) ReplicaOf(primary *Server) *Server {
	c.t.Helper()
	_, port := splitAddr(c.t, primary.Addr)
	for _, n := range c.running() {
		info := c.str(redis.String(n.Do("INFO", "replication")))
		if strings.Contains(info, "role:slave") && strings.Contains(info, "master_port:"+strconv.Itoa(port)+"\r") {
			return n
		}
	}
	c.t.Fatalf("storetest: no replica of %s", primary.Addr)
	return nil
}

// Kill kills node at once (SIGKILL, by its pid), as a crash would.
func (c *Cluster) Kill(node *Server) { node.Stop() }

// Failover has replica take over from its primary with CLUSTER FAILOVER
// (graceful: the primary stops writes until the replica has caught up),
// and waits until every running node names it as the primary of its
// slots. It returns how long that took.
func (c *Cluster) Failover(replica *Server) time.Duration {
	c.t.Helper()
	start := time.Now()
	c.must(replica.Do("CLUSTER", "FAILOVER"))
	c.WaitPrimary(replica)
	return time.Since(start)
}

// WaitPrimary waits until node is a primary that owns slots, as every
// running node sees it, and returns how long it waited.
func (c *Cluster) WaitPrimary(node *Server) time.Duration {
	c.t.Helper()
	start := time.Now()
	c.eventually(node.Addr+" to be a primary everywhere", func() bool {
		info, err := redis.String(node.Do("INFO", "replication"))
		if err != nil || !strings.Contains(info, "role:master") {
			return false
		}
		for _, n := range c.running() {
			owns := false
			for slot := 0; slot < redisSlots; slot += 64 {
				if c.ownerSeenBy(n, slot) == node {
					owns = true
					break
				}
			}
			if !owns {
				return false
			}
		}
		return true
	})
	return time.Since(start)
}

// WaitHealthy waits until every running node reports cluster_state:ok and
// every running replica's link to its primary is up.
func (c *Cluster) WaitHealthy() {
	c.t.Helper()
	c.eventually("the cluster to be ok", func() bool {
		for _, n := range c.running() {
			state, err := redis.String(n.Do("CLUSTER", "INFO"))
			if err != nil || !strings.Contains(state, "cluster_state:ok") {
				return false
			}
			info, err := redis.String(n.Do("INFO", "replication"))
			if err != nil || strings.Contains(info, "role:slave") && !strings.Contains(info, "master_link_status:up") {
				return false
			}
		}
		return true
	})
}

// MigrateSlot moves slot from its primary to the primary to, as
// redis-cli --cluster reshard does: IMPORTING on to, MIGRATING on the
// source, MIGRATE of its keys a few at a time (pause between batches, so
// that clients meet ASK for the keys moved and the source for the
// others), then SETSLOT NODE on both and on every other primary. It
// returns how many keys it moved.
func (c *Cluster) MigrateSlot(slot int, to *Server, pause time.Duration) int {
	c.t.Helper()
	from := c.Owner(c.keyIn(slot))
	if from == to {
		return 0
	}
	toID := c.str(redis.String(to.Do("CLUSTER", "MYID")))
	fromID := c.str(redis.String(from.Do("CLUSTER", "MYID")))
	c.must(to.Do("CLUSTER", "SETSLOT", slot, "IMPORTING", fromID))
	c.must(from.Do("CLUSTER", "SETSLOT", slot, "MIGRATING", toID))
	host, port := splitAddr(c.t, to.Addr)
	moved := 0
	for {
		keys := c.strs(redis.Strings(from.Do("CLUSTER", "GETKEYSINSLOT", slot, 4)))
		if len(keys) == 0 {
			break
		}
		args := []any{host, port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		c.must(from.Do("MIGRATE", args...))
		moved += len(keys)
		time.Sleep(pause)
	}
	c.must(to.Do("CLUSTER", "SETSLOT", slot, "NODE", toID))
	c.must(from.Do("CLUSTER", "SETSLOT", slot, "NODE", toID))
	for _, n := range c.running() {
		if n != to && n != from {
			n.Do("CLUSTER", "SETSLOT", slot, "NODE", toID) // replicas refuse; they learn it by gossip
		}
	}
	c.eventually("every node to see slot "+strconv.Itoa(slot)+" moved", func() bool { return c.Primary(slot) == to })
	return moved
}

// keyIn returns a key whose slot is slot (a hash tag found by trying).
func (c *Cluster) keyIn(slot int) string {
	c.t.Helper()
	for i := 0; ; i++ {
		k := "{" + strconv.Itoa(i) + "}"
		if c.Slot(k) == slot {
			return k
		}
	}
}

// running returns the nodes whose process runs.
func (c *Cluster) running() []*Server {
	var out []*Server
	for _, n := range c.Nodes {
		select {
		case <-n.exited:
		default:
			out = append(out, n)
		}
	}
	return out
}

// any returns a running node.
func (c *Cluster) any() *Server {
	c.t.Helper()
	if r := c.running(); len(r) > 0 {
		return r[0]
	}
	c.t.Fatal("storetest: no node of the cluster runs")
	return nil
}

// ownerSeenBy returns the node n names as the primary of slot, nil if
// none or one not running.
func (c *Cluster) ownerSeenBy(n *Server, slot int) *Server {
	ranges, err := redis.Values(n.Do("CLUSTER", "SLOTS"))
	if err != nil {
		return nil
	}
	for _, r := range ranges {
		rv, _ := redis.Values(r, nil)
		if len(rv) < 3 {
			continue
		}
		from, _ := redis.Int(rv[0], nil)
		to, _ := redis.Int(rv[1], nil)
		if slot < from || slot > to {
			continue
		}
		node, _ := redis.Values(rv[2], nil)
		if len(node) < 2 {
			return nil
		}
		host, _ := redis.String(node[0], nil)
		port, _ := redis.Int(node[1], nil)
		addr := fmt.Sprintf("%s:%d", host, port)
		for _, s := range c.running() {
			if s.Addr == addr {
				return s
			}
		}
		return nil
	}
	return nil
}

// eventually polls cond every 20 ms until it holds, and fails the test
// after clusterTimeout.
func (c *Cluster) eventually(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(clusterTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("storetest: waited %v for %s", clusterTimeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// must fails the test on err, and returns v; str, strs and int are must
// for typed replies.
func (c *Cluster) must(v any, err error) any {
	c.t.Helper()
	if err != nil {
		c.t.Fatalf("storetest: %v", err)
	}
	return v
}

func (c *Cluster) str(v string, err error) string {
	c.t.Helper()
	c.must(v, err)
	return v
}

func (c *Cluster) strs(v []string, err error) []string {
	c.t.Helper()
	c.must(v, err)
	return v
}

func (c *Cluster) int(v int, err error) int {
	c.t.Helper()
	c.must(v, err)
	return v
}

func splitAddr(t testing.TB, addr string) (string, int) {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	port, err := strconv.Atoi(addr[i+1:])
	if err != nil {
		t.Fatalf("storetest: address %q", addr)
	}
	return addr[:i], port
}
