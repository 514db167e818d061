package provider_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
)

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	type config struct {
		Name   string
		Secret provider.Secret
	}
	cfg := config{Name: "n", Secret: "hunter2-hunter2"}
	js, err := json.Marshal(cfg)
	require.NoError(t, err)
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "cfg", cfg, "s", cfg.Secret)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "s", cfg.Secret)
	for _, s := range []string{
		fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%s", cfg.Secret),
		fmt.Sprintf("%q", cfg.Secret), fmt.Sprintf("%x", cfg.Secret), fmt.Sprint(cfg.Secret), string(js), logged.String(),
	} {
		assert.NotContains(t, s, "hunter2")
		assert.NotContains(t, s, fmt.Sprintf("%x", "hunter2"))
	}
	assert.Equal(t, "hunter2-hunter2", string(cfg.Secret), "the value is still there for those who convert it")
	assert.Equal(t, "", provider.Secret("").String())
}
