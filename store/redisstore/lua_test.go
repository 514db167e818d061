package redisstore

import (
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// The scripts' constants reach Redis's Lua byte for byte. Go's quoting
// wrote LIVE as "\x01", which Lua 5.1 reads as "x01": no script saw a live
// session or a sign-out mark, so a signed-out credential minted again.
func TestLuaFrameReachesLuaByteForByte(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	got, err := redis.Values(srv.Do("EVAL", luaFrame("return {SESSION_PREFIX, ENDED, LIVE, RECORD_LEN_AT, RECORD_AT, NONCE_AT, CRED_AT, CRED_LEN}"), 0))
	require.NoError(t, err)
	assert.Equal(t, []any{
		[]byte(sessionPrefix), format.Ended, []byte{format.FrameLive},
		int64(format.RecordLenAt), int64(format.RecordAt), int64(format.NonceAt), int64(format.CredAt), int64(format.CredentialLen),
	}, got)

	for _, s := range []string{"", "sg:s:", "\x00", "\x01", "\x001", "\"\\'", "\n\r\t", "\xff\x7f~ "} {
		got, err := redis.Bytes(srv.Do("EVAL", "return "+luaString(s), 0))
		require.NoError(t, err, "%q", s)
		assert.Equal(t, s, string(got), "%q", s)
	}
}
