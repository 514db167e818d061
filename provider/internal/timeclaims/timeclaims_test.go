package timeclaims

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
)

func TestAuthTime(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	leeway := 30 * time.Second
	for _, c := range []struct {
		name    string
		value   any
		readErr bool   // Read refuses it
		reason  string // Check's reason when Read accepts it
		want    time.Time
	}{
		{name: "absent", value: nil, want: time.Time{}},
		{name: "an hour ago", value: float64(now.Unix() - 3600), want: now.Add(-time.Hour)},
		{name: "json.Number", value: json.Number("1699996400"), want: now.Add(-time.Hour)},
		{name: "fractional", value: float64(now.Unix()) - 0.25, want: now.Add(-250 * time.Millisecond)},
		{name: "the epoch", value: 0.0, want: time.Unix(0, 0)},
		{name: "now + leeway", value: float64(now.Add(leeway).Unix()), want: now.Add(leeway)},
		{name: "past now + leeway", value: float64(now.Add(leeway).Unix() + 1), reason: "authenticated in the future"},
		{name: "negative", value: -1.0, readErr: true},
		{name: "NaN", value: math.NaN(), readErr: true},
		{name: "+Inf", value: math.Inf(1), readErr: true},
		{name: "past MaxTime", value: float64(provider.MaxTime.Unix() + 1), readErr: true},
		{name: "a string", value: "1700000000", readErr: true},
		{name: "a bool", value: true, readErr: true},
		{name: "an array", value: []any{1.0}, readErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			claims := map[string]any{}
			if c.name != "absent" {
				claims["auth_time"] = c.value
			}
			times, err := Read(claims)
			if c.readErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "auth_time")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.reason, times.Check(now, leeway))
			if c.reason == "" {
				assert.True(t, c.want.Equal(times.AuthTime), "AuthTime %v, want %v", times.AuthTime, c.want)
			}
		})
	}
}

// FuzzAuthTime: whatever auth_time holds, Read and Check never panic, and
// an AuthTime that passes both is in range and not past now + leeway.
func FuzzAuthTime(f *testing.F) {
	for _, s := range []string{`0`, `1700000000`, `-1`, `1e300`, `"x"`, `null`, `1.5`, `253402300799`, `253402300800`} {
		f.Add(s)
	}
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, raw string) {
		var v any
		if json.Unmarshal([]byte(raw), &v) != nil {
			return
		}
		times, err := Read(map[string]any{"auth_time": v})
		if err != nil || times.Check(now, provider.DefaultLeeway) != "" {
			return
		}
		if times.AuthTime.Before(time.Unix(0, 0)) || times.AuthTime.After(now.Add(provider.DefaultLeeway)) {
			t.Fatalf("accepted auth_time %s as %v", raw, times.AuthTime)
		}
	})
}
