package middleware_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/store"
)

// commitSpy is an application's wrapper of a Store (store.Store's doc:
// a type that embeds a Store may override the scs methods), overriding
// scs's context-aware methods to see the request's context (tracing,
// metrics).
type commitSpy struct {
	store.Store
	findCtx, commitCtx, withSession atomic.Int64
}

func (s *commitSpy) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	s.findCtx.Add(1)
	return s.Store.Find(token)
}

func (s *commitSpy) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	s.commitCtx.Add(1)
	if _, ok := middleware.SessionFrom(ctx); ok {
		s.withSession.Add(1)
	}
	return s.Store.Commit(token, b, expiry)
}

// TestAStoreWrapperSeesTheCommits: the handlers' values reach a wrapping
// store's CommitCtx, with the request's context values, as scs calls it;
// sessions are read once per request by the store's own lookup, never
// again through scs's FindCtx.
func TestAStoreWrapperSeesTheCommits(t *testing.T) {
	t.Parallel()
	spy := &commitSpy{Store: store.NewMemory()}
	e := newEnv(t, "memory", func(c *middleware.Config) { c.Store = spy })
	_, session := e.signIn("quinn")
	r := e.do(req{method: http.MethodPost, path: "/api/note?v=hi", cookie: session})
	require.Equal(t, http.StatusNoContent, r.StatusCode, r.body)
	assert.Equal(t, "hi", e.do(req{path: "/api/note", cookie: session}).body)
	assert.EqualValues(t, 1, spy.commitCtx.Load(), "CommitCtx calls")
	assert.EqualValues(t, 1, spy.withSession.Load(), "with the request's context values")
	assert.Zero(t, spy.findCtx.Load(), "no second read through scs")
}
