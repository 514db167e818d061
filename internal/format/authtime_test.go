package format

import (
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/provider"
)

// an AuthTime whose Unix milliseconds overflow int64
// decodes as another time; one of them in the future would pass every
// step-up for ever.
func TestAuthTimeOverflowRoundTrip(t *testing.T) {
	now := time.Now()
	for _, at := range []time.Time{
		time.Date(-1_000_000_000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-300_000_000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-292_277_022, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(-1<<62+12345678901, 0),
	} {
		s := &Session{Identity: provider.Identity{UserID: "u", Provider: "p"}, Created: now, LastSeen: now, AuthTime: at, Expires: now.Add(time.Hour)}
		got, err := DecodeRecord("k", Stored{Record: EncodeRecord(s)})
		if err != nil {
			t.Logf("%v: decode error %v", at, err)
			continue
		}
		t.Logf("AuthTime %v decodes as %v", at, got.AuthTime)
		if got.AuthTime.After(now) {
			t.Errorf("AuthTime %v decodes as %v, in the future", at, got.AuthTime)
		}
	}
}
