package redisstore

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// A Redis user that may not open the invalidation link (Redis 7 gives a
// new ACL user no channel) turned the near cache off with no word: Open,
// Check and so /healthz said nothing while every read went to Redis.
// Both now say what the user needs; a user that may is not refused.
func TestNearCacheRefusedLinkIsReported(t *testing.T) {
	srv := storetest.Start(t)
	host := strings.TrimPrefix(srv.URL, "redis://")
	for _, c := range []struct {
		name    string
		rules   []any
		refused bool
	}{
		{"nochannels", []any{"on", ">pw", "~*", "resetchannels", "+@all"}, true},
		{"noclient", []any{"on", ">pw", "~*", "&*", "+@all", "-client"}, true},
		{"nosubscribe", []any{"on", ">pw", "~*", "&*", "+@all", "-subscribe"}, true},
		{"onlysg", []any{"on", ">pw", "~sg:*", "&*", "+@all"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := srv.Do("ACL", append([]any{"SETUSER", c.name}, c.rules...)...)
			require.NoError(t, err)
			st, err := Open("redis://"+c.name+":pw@"+host, Options{NearCache: &NearCache{Fence: 50 * time.Millisecond}})
			require.NotNil(t, st)
			defer st.(io.Closer).Close()
			r := st.(*openStore).redisStore
			checked := r.Check(context.Background(), []byte("one secret's fingerprint"), true)
			if !c.refused {
				assert.NoError(t, err)
				assert.NoError(t, checked)
				return
			}
			for _, err := range []error{err, checked} {
				require.ErrorIs(t, err, store.ErrMisconfigured)
				assert.ErrorIs(t, err, store.ErrUnavailable)
				assert.Contains(t, err.Error(), "&__redis__:invalidate", "it says what the user needs")
				assert.NotContains(t, err.Error(), "pw")
			}
			// Still served, from Redis.
			key := nearMint(t, r, "acl"+c.name, "p:acl")
			assert.True(t, lookup(t, r, key).Live())
			assert.Zero(t, r.near.hits.Load())
		})
	}
}
