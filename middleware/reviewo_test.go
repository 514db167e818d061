package middleware_test

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Review O: concurrent users behind RequireSession each Put their own
// name in scs and read it back on the next request; no request sees
// another's values, anonymous requests see none.
func TestReviewOValuesNoCrossTalk(t *testing.T) {
	for _, kind := range []string{"memory", "redis"} {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			h := e.auth.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				prev := e.sm.GetString(r.Context(), "who")
				if me := r.URL.Query().Get("me"); me != "" {
					e.sm.Put(r.Context(), "who", me)
				}
				io.WriteString(w, prev)
			}))
			srv := serveBehind(t, e, h.ServeHTTP)
			anon := serveBehind(t, e, func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "anon="+e.sm.GetString(r.Context(), "who"))
			})
			const n = 16
			sessions := make([]string, n)
			for i := range sessions {
				_, sessions[i] = e.signIn(fmt.Sprintf("user%d", i))
			}
			call := func(s *string, i int, me string) resp {
				r, err := http.NewRequest(http.MethodGet, srv.URL+"/?me="+me, nil)
				require.NoError(t, err)
				r.Header.Set("Cookie", cookieName+"="+*s)
				res, err := srv.Client().Do(r)
				require.NoError(t, err)
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				return resp{Response: res, body: string(b)}
			}
			for round := 0; round < 5; round++ {
				var wg sync.WaitGroup
				for i := 0; i < n; i++ {
					wg.Add(2)
					go func() {
						defer wg.Done()
						me := fmt.Sprintf("u%d-r%d", i, round)
						r := call(&sessions[i], i, me)
						assert.Equal(t, http.StatusOK, r.StatusCode)
						if round > 0 {
							assert.Equal(t, fmt.Sprintf("u%d-r%d", i, round-1), r.body)
						} else {
							assert.Equal(t, "", r.body)
						}
					}()
					go func() {
						defer wg.Done()
						r := get(t, anon, nil)
						assert.Equal(t, "anon=", r.body)
					}()
				}
				wg.Wait()
			}
		})
	}
}
