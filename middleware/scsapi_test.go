package middleware_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every request that passed through the middleware can use the scs API:
// without a session, reads give zero values and writes are dropped (not
// stored, no cookie), never a panic.
func TestScsAPIWorksWithoutASession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	srv := serveBehind(t, e, func(w http.ResponseWriter, r *http.Request) {
		flash := e.sm.GetString(r.Context(), "flash")
		n := e.sm.GetInt(r.Context(), "visits")
		e.sm.Put(r.Context(), "flash", "written without a session")
		e.sm.Put(r.Context(), "visits", n+1)
		if flash != "" || n != 0 || e.sm.Exists(r.Context(), "nothing") {
			http.Error(w, "not zero values", http.StatusTeapot)
			return
		}
		io.WriteString(w, "ok "+e.sm.GetString(r.Context(), "flash"))
	})
	_, live := e.signIn("hana")
	keys := func() []string {
		k, err := redis.Strings(e.redis.Do("KEYS", "*"))
		require.NoError(t, err)
		return k
	}
	before := keys()

	for _, tc := range []struct {
		name string
		hdr  http.Header
	}{
		{"no credentials", nil},
		{"a dead cookie", http.Header{"Cookie": {cookieName + "=" + randomToken()}}},
		{"an unknown session header", http.Header{"X-Session-Token": {randomToken()}}},
		{"a junk session header", http.Header{"X-Session-Token": {"junk"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, srv, tc.hdr)
			require.Equal(t, http.StatusOK, r.StatusCode, r.body)
			assert.Equal(t, "ok written without a session", r.body, "the request's own writes read back")
			if c := r.sessionCookie(); c != nil {
				assert.Empty(t, c.Value, "only ever the clearing of a dead cookie")
			}
			assert.Empty(t, r.Header.Get("X-Session-Token"))
		})
	}
	assert.ElementsMatch(t, before, keys(), "nothing was stored")

	r := get(t, srv, http.Header{"Cookie": {cookieName + "=" + live}})
	assert.Equal(t, "ok written without a session", r.body)
	r = get(t, srv, http.Header{"Cookie": {cookieName + "=" + live}})
	assert.Equal(t, http.StatusTeapot, r.StatusCode, "with a session, writes are kept: %s", r.body)
}

// With the store down, the handler still runs anonymously and the scs
// API still answers.
func TestScsAPIWorksWhenTheStoreIsDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	srv := serveBehind(t, e, func(w http.ResponseWriter, r *http.Request) {
		e.sm.Put(r.Context(), "flash", "x")
		io.WriteString(w, "ok "+e.sm.GetString(r.Context(), "flash"))
	})
	_, live := e.signIn("ines")
	e.redis.Stop()
	defer e.redis.Restart()
	r := get(t, srv, http.Header{"Cookie": {cookieName + "=" + live}})
	assert.Equal(t, http.StatusOK, r.StatusCode)
	assert.Equal(t, "ok x", r.body)
}
