package redisstore

import "testing"

// Two distinct user indexes (provider "}p" user "x", provider "=}p" user
// "x") get one hash-tagged key: one index, credentials and continuations
// hash in a Cluster, so one MaxSessions count (Review M's collision, by
// another byte).
func TestReviewNUserTagInjective(t *testing.T) {
	c := &clusterStore{prefix: "sg:"}
	users := []string{"}p:x", "=}p:x", "p:x", "=p:x", "==p:x", "}=p:x", "=}}p:x", "{p:x", "p}:x"}
	keys := map[string]string{}
	for _, u := range users {
		k := c.indexKey(u)
		if other, ok := keys[k]; ok {
			t.Errorf("users %q and %q share index key %q", other, u, k)
		}
		keys[k] = u
	}
}
