package redisstore

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url  string
		want redisURL
	}{
		{"redis://127.0.0.1:6379/0", redisURL{addrs: []string{"127.0.0.1:6379"}}},
		{"redis://host", redisURL{addrs: []string{"host:6379"}}},
		{"rediss://alice:pw@host:6380/3", redisURL{tls: true, addrs: []string{"host:6380"}, user: "alice", pass: "pw", db: 3}},
		{"redis://:pw@[::1]:7000/", redisURL{addrs: []string{"[::1]:7000"}, pass: "pw"}},
		{"redis://app:pw@s1:26380/2?master_name=sessions&addr=s2&addr=s3:26381",
			redisURL{mode: sentinel, addrs: []string{"s1:26380", "s2:26379", "s3:26381"}, user: "app", pass: "pw", db: 2, master: "sessions"}},
		{"rediss://s1?master_name=m&sentinel_username=watch&sentinel_password=spw",
			redisURL{mode: sentinel, tls: true, addrs: []string{"s1:26379"}, master: "m", sentinelUser: "watch", sentinelPass: "spw"}},
		{"redis://n1:7000?cluster=true&addr=n2:7001", redisURL{mode: cluster, addrs: []string{"n1:7000", "n2:7001"}}},
		{"rediss://u:p@n1:7000/0?cluster=true", redisURL{mode: cluster, tls: true, addrs: []string{"n1:7000"}, user: "u", pass: "p"}},
		{"redis://host?cluster=false", redisURL{addrs: []string{"host:6379"}}},
	} {
		got, err := parseURL(tc.url)
		require.NoError(t, err, tc.url)
		assert.Equal(t, tc.want, *got, tc.url)
	}
}

// Bad URLs are refused with what is wrong, never with the URL, its
// password or its host; an unknown parameter is named when it is a word.
func TestParseURLRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, says string }{
		{"http://:hunter2@secret-host", "does not start with redis://"},
		{"redis://:hunter2@secret-host/0?master_name=m&timeout=5", `unknown query parameter "timeout"`},
		{"redis://:hunter2@secret-host/0?HUNTER2=1", "unknown query parameter (known"},
		{"redis://:hunter2@secret-host/0?skip_verify=true", `unknown query parameter "skip_verify"`},
		{"redis://:hunter2@secret-host:7000/1?cluster=true", "database other than 0"},
		{"redis://:hunter2@secret-host/0?cluster=hunter2", "neither true nor false"},
		{"redis://:hunter2@secret-host/0?master_name=", "empty master_name"},
		{"redis://:hunter2@secret-host/0?master_name=a&master_name=b", "master_name more than once"},
		{"redis://:hunter2@secret-host/0?master_name=a&cluster=true", "both master_name"},
		{"redis://:hunter2@secret-host/0?addr=secret-host:2", "has addr but neither"},
		{"redis://:hunter2@secret-host/0?sentinel_password=hunter2", "but no master_name"},
		{"redis://:hunter2@secret-host/0?cluster=true&sentinel_password=hunter2", "with cluster=true"},
		{"redis://:hunter2@secret-host/0?master_name=m&addr=secret-host:99999", "addr number 1 has a port"},
		{"redis://:hunter2@secret-host/0?master_name=m&addr=hunter2@secret-host", "addr number 1 is not host"},
		{"redis://:hunter2@secret-host/0?master_name=m&addr=", "addr number 1 is not host"},
		{"redis://:hunter2@secret-host:0/0", "port that is not a number"},
		{"redis://:hunter2@secret-host/x", "not a database number"},
		{"redis://:hunter2@secret-host/0?master_name=m&addr=%zz", "query that cannot be parsed"},
		{"redis://:hunter2@secret-host/0#frag", "fragment"},
	} {
		_, err := parseURL(tc.url)
		require.Error(t, err, tc.url)
		assert.Contains(t, err.Error(), tc.says, tc.url)
		assert.True(t, strings.HasPrefix(err.Error(), "store: the Redis URL"), err.Error())
		for _, secret := range []string{"hunter2", "HUNTER2", "secret-host", tc.url} {
			assert.NotContains(t, err.Error(), secret, tc.url)
		}
	}
}

// Options.TLS needs a rediss:// URL; NewPool takes single URLs only.
func TestOpenAndNewPoolRefuseWhatTheyCannotServe(t *testing.T) {
	t.Parallel()
	_, err := Open("redis://:hunter2@secret-host/0", Options{TLS: &tls.Config{}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "use rediss://")
	assert.NotContains(t, err.Error(), "hunter2")
	for _, u := range []string{"redis://:hunter2@secret-host?master_name=m", "redis://:hunter2@secret-host?cluster=true"} {
		_, err := NewPool(u)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "use redisstore.Open")
		assert.NotContains(t, err.Error(), "hunter2")
	}
}
