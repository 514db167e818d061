package provider_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
)

type rvnNamed string

func (n rvnNamed) Name() string { return string(n) }
func (n rvnNamed) Validate(context.Context, string) (*provider.Identity, error) {
	return &provider.Identity{UserID: "u"}, nil
}

// Review N: a nested Multi hid a duplicate Name: two providers (two
// issuers) recorded sessions as "a", which NewMulti refuses for flat
// routes. A nested Multi's providers now count one by one, and its
// sessions record its own providers' names.
func TestReviewNNestedMultiDuplicateName(t *testing.T) {
	inner := provider.NewMulti(provider.Route{Match: func(string) bool { return true }, Provider: rvnNamed("a")}, provider.Route{Provider: rvnNamed("b")})
	assert.PanicsWithValue(t, `sessiongate/provider: NewMulti has two providers named "a"`, func() {
		provider.NewMulti(provider.Route{Match: func(string) bool { return false }, Provider: inner}, provider.Route{Provider: rvnNamed("a")})
	})
	outer := provider.NewMulti(provider.Route{Match: func(string) bool { return true }, Provider: inner}, provider.Route{Provider: rvnNamed("c")})
	assert.Equal(t, "a|b|c", outer.Name())
	id, err := outer.Validate(context.Background(), "opaque-token")
	require.NoError(t, err)
	assert.Equal(t, "a", id.Provider, "the session records the provider that validated it")
}
