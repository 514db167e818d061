package middleware_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/redisstore"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// token A's session was continued by token B's; signing out the continued
// session must keep A out too (A is a credential of that session).
func TestAContinuedTokenIsSignedOutWithItsDevice(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		a := e.fake.Issue("alice", time.Hour)
		b := e.fake.Issue("alice", time.Hour)
		ra := e.exchange(a)
		require.Equal(t, 201, ra.StatusCode)
		rb := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: b, cookie: ra.sessionCookie().Value})
		require.Equal(t, 201, rb.StatusCode, rb.body)
		// A with B's cookie is that session
		r3 := e.do(req{path: "/api/me", bearer: a, cookie: rb.sessionCookie().Value})
		require.Equal(t, 200, r3.StatusCode)
		// sign out
		require.Equal(t, 204, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: rb.sessionCookie().Value}).StatusCode)
		// both tokens, bearer only
		for name, tok := range map[string]string{"A": a, "B": b} {
			r := e.do(req{path: "/api/me", bearer: tok})
			assert.Equal(t, 401, r.StatusCode, "%s after sign-out", name)
		}
	})
}

// two new tokens of one user continue one session concurrently.
func TestConcurrentContinuationsNeverShareAnID(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		a := e.fake.Issue("bob", time.Hour)
		ra := e.exchange(a)
		require.Equal(t, 201, ra.StatusCode)
		var wg sync.WaitGroup
		res := make([]resp, 6)
		for i := range res {
			tok := e.fake.Issue("bob", time.Hour)
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i] = e.do(req{method: http.MethodPost, path: "/auth/session", bearer: tok, cookie: ra.sessionCookie().Value})
			}()
		}
		wg.Wait()
		live := 0
		ids := map[string]int{}
		for _, r := range res {
			if r.StatusCode != 201 {
				continue
			}
			me := e.do(req{path: "/auth/session", cookie: r.sessionCookie().Value})
			if me.StatusCode == 200 {
				live++
				ids[me.json(t)["session"].(map[string]any)["id"].(string)]++
			}
		}
		assert.Positive(t, live)
		for id, n := range ids {
			assert.Equal(t, 1, n, "public id %s is held by %d live sessions", id, n)
		}
	})
}

// A handler's scs SetDeadline cannot extend a session past its absolute
// lifetime.
func TestSetDeadlineCannotExtendASession(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, func(c *middleware.Config) { c.Lifetime = time.Hour })
		r := e.exchange(e.fake.Issue("carol", 100*time.Hour))
		require.Equal(t, http.StatusCreated, r.StatusCode)
		h := e.auth.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			e.sm.SetDeadline(r.Context(), time.Now().Add(50*time.Hour))
			e.sm.Put(r.Context(), "x", "y")
			w.WriteHeader(http.StatusNoContent)
		}))
		hr, _ := http.NewRequest(http.MethodGet, "/x", nil)
		hr.AddCookie(&http.Cookie{Name: cookieName, Value: r.sessionCookie().Value})
		require.Equal(t, http.StatusNoContent, httptestRecorderReq(h, hr).Code)
		e.clock.Advance(2 * time.Hour)
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: r.sessionCookie().Value}).StatusCode, "the lifetime is absolute")
	})
}

// scs's MergeSession fails loudly and changes nothing.
func TestMergeSessionFailsLoudly(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, s1 := e.signIn("dan")
		_, s2 := e.signIn("erin")
		var merr error
		h := e.auth.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			merr = e.sm.MergeSession(r.Context(), s2)
			w.WriteHeader(http.StatusNoContent)
		}))
		hr, _ := http.NewRequest(http.MethodGet, "/x", nil)
		hr.AddCookie(&http.Cookie{Name: cookieName, Value: s1})
		httptestRecorderReq(h, hr)
		assert.ErrorIs(t, merr, store.ErrUnsupported)
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: s2}).StatusCode, "the other session is untouched")
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: s1}).StatusCode)
	})
}

func httptestRecorderReq(h http.Handler, r *http.Request) *recorder {
	w := &recorder{hdr: http.Header{}}
	h.ServeHTTP(w, r)
	return w
}

type recorder struct {
	hdr  http.Header
	Code int
}

func (r *recorder) Header() http.Header { return r.hdr }
func (r *recorder) Write(b []byte) (int, error) {
	if r.Code == 0 {
		r.Code = 200
	}
	return len(b), nil
}
func (r *recorder) WriteHeader(c int) {
	if r.Code == 0 {
		r.Code = c
	}
}

// gate holds every Validate until n calls are inside.
type gate struct {
	provider.Provider
	mu      sync.Mutex
	n, in   int
	opened  chan struct{}
	entered chan struct{}
	hold    chan struct{} // when non-nil, Validate waits for it
}

func (g *gate) Validate(ctx context.Context, tok string) (*provider.Identity, error) {
	g.mu.Lock()
	g.in++
	if g.in == g.n {
		close(g.opened)
	}
	g.mu.Unlock()
	if g.entered != nil {
		g.entered <- struct{}{}
	}
	if g.hold != nil {
		<-g.hold
	}
	select {
	case <-g.opened:
	case <-time.After(10 * time.Second):
	}
	return g.Provider.Validate(ctx, tok)
}

func TestTwoContinuationsOfOneSessionGetTwoIDs(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		g := &gate{n: 2, opened: make(chan struct{})}
		e := newEnv(t, kind, func(c *middleware.Config) { g.Provider = c.Provider; c.Provider = g })
		g.n = 1000 // first sign-in passes at once after timeout? no: set below
		g.mu.Lock()
		g.n, g.in = 1, 0
		g.mu.Unlock()
		ra := e.exchange(e.fake.Issue("bob", time.Hour))
		require.Equal(t, 201, ra.StatusCode)
		g.mu.Lock()
		g.n, g.in, g.opened = 2, 0, make(chan struct{})
		g.mu.Unlock()
		var wg sync.WaitGroup
		res := make([]resp, 2)
		for i := range res {
			tok := e.fake.Issue("bob", time.Hour)
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i] = e.do(req{method: http.MethodPost, path: "/auth/session", bearer: tok, cookie: ra.sessionCookie().Value})
			}()
		}
		wg.Wait()
		var ids []string
		for _, r := range res {
			require.Equal(t, 201, r.StatusCode, r.body)
			ids = append(ids, r.json(t)["session"].(map[string]any)["id"].(string))
		}
		assert.NotEqual(t, ids[0], ids[1], "two live sessions, one public id")
		require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/sessions/" + ids[1], cookie: res[0].sessionCookie().Value}).StatusCode)
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: res[0].sessionCookie().Value}).StatusCode, "revoking one id ends one device")
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: res[1].sessionCookie().Value}).StatusCode)
	})
}

func TestAContinuationNeverRevivesAnEndedDevice(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"session", "sessions", "revoke-id", "revoke-user", "others-from-other"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			stores(t, func(t *testing.T, kind string) {
				g := &gate{n: -1, opened: make(chan struct{})}
				close(g.opened)
				e := newEnv(t, kind, func(c *middleware.Config) { g.Provider = c.Provider; c.Provider = g })
				ra := e.exchange(e.fake.Issue("bob", time.Hour))
				require.Equal(t, 201, ra.StatusCode)
				rother := e.exchange(e.fake.Issue("bob", time.Hour)) // another device
				require.Equal(t, 201, rother.StatusCode, rother.body)
				id := ra.json(t)["session"].(map[string]any)["id"].(string)
				require.Equal(t, 204, e.do(req{method: http.MethodPost, path: "/api/note?v=from-the-revoked-session", cookie: ra.sessionCookie().Value, hdr: map[string]string{"Origin": e.srv.URL}}).StatusCode)
				g.entered, g.hold = make(chan struct{}, 1), make(chan struct{})
				b := e.fake.Issue("bob", time.Hour)
				done := make(chan resp)
				go func() {
					done <- e.do(req{method: http.MethodPost, path: "/auth/session", bearer: b, cookie: ra.sessionCookie().Value})
				}()
				<-g.entered
				switch how {
				case "session":
					require.Equal(t, 204, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: ra.sessionCookie().Value}).StatusCode)
				case "sessions":
					require.Equal(t, 204, e.do(req{method: http.MethodDelete, path: "/auth/sessions", cookie: ra.sessionCookie().Value}).StatusCode)
				case "revoke-id":
					require.Equal(t, 204, e.do(req{method: http.MethodDelete, path: "/auth/sessions/" + id, cookie: rother.sessionCookie().Value}).StatusCode)
				case "revoke-user":
					_, err := e.auth.RevokeUser(context.Background(), "plurality", "bob")
					require.NoError(t, err)
				case "others-from-other":
					r := e.do(req{method: http.MethodDelete, path: "/auth/sessions/others", cookie: rother.sessionCookie().Value})
					require.Equal(t, 200, r.StatusCode, r.body)
				}
				g.entered = nil
				close(g.hold)
				rb := <-done
				if rb.StatusCode == 201 {
					nid := rb.json(t)["session"].(map[string]any)["id"].(string)
					assert.NotEqual(t, id, nid, "the signed-out device came back under its id (created %v)", rb.json(t)["session"].(map[string]any)["created"])
					assert.Empty(t, e.do(req{path: "/api/note", cookie: rb.sessionCookie().Value}).body, "and none of the ended device's values")
				}
			})
		})
	}
}

func TestAContinuedTokenEndsWithEveryWayItsDeviceEnds(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"signout", "signout-all", "revoke-user", "revoke-id-from-other"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			stores(t, func(t *testing.T, kind string) {
				e := newEnv(t, kind)
				a := e.fake.Issue("alice", time.Hour)
				b := e.fake.Issue("alice", time.Hour)
				ra := e.exchange(a)
				other := e.exchange(e.fake.Issue("alice", time.Hour))
				rb := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: b, cookie: ra.sessionCookie().Value})
				require.Equal(t, 201, rb.StatusCode, rb.body)
				id := rb.json(t)["session"].(map[string]any)["id"].(string)
				switch how {
				case "signout":
					require.Equal(t, 204, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: rb.sessionCookie().Value}).StatusCode)
				case "signout-all":
					require.Equal(t, 204, e.do(req{method: http.MethodDelete, path: "/auth/sessions", cookie: rb.sessionCookie().Value}).StatusCode)
				case "revoke-user":
					_, err := e.auth.RevokeUser(context.Background(), "plurality", "alice")
					require.NoError(t, err)
				case "revoke-id-from-other":
					require.Equal(t, 204, e.do(req{method: http.MethodDelete, path: "/auth/sessions/" + id, cookie: other.sessionCookie().Value}).StatusCode)
				}
				calls := e.fake.Calls()
				r := e.do(req{path: "/api/me", bearer: a})
				assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "the token whose session the ended device continued")
				assert.Equal(t, calls, e.fake.Calls(), "refused without an upstream call")
			})
		})
	}
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if len(x) > 0 && len(s) > 0 && (stringsContains(s, x)) {
			return true
		}
	}
	return false
}

func stringsContains(s, x string) bool { return strings.Contains(s, x) }

func TestCookieArrangementsNeverLoseALiveSession(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, live := e.signIn("kim")
		dead := randomToken()
		cases := map[string]http.Header{
			"dead,live + bad bearer":   {"Cookie": {cookieName + "=" + dead + "; " + cookieName + "=" + live}, "Authorization": {"Bearer abc.def"}},
			"dead,live + rejected jwt": {"Cookie": {cookieName + "=" + dead + "; " + cookieName + "=" + live}, "Authorization": {"Bearer " + e.fake.Issue("kim", -time.Hour)}},
			"4 dead + live":            {"Cookie": {cookieName + "=" + dead + "; " + cookieName + "=" + randomToken() + "; " + cookieName + "=" + randomToken() + "; " + cookieName + "=" + randomToken() + "; " + cookieName + "=" + live}},
			"dead header + dead,live":  {"Cookie": {cookieName + "=" + dead + "; " + cookieName + "=" + live}, "X-Session-Token": {randomToken()}},
			"dead, live in 2 lines":    {"Cookie": {cookieName + "=" + dead, cookieName + "=" + live}},
			"quoted live":              {"Cookie": {cookieName + "=\"" + live + "\""}},
			"junk, live":               {"Cookie": {cookieName + "=%%%; " + cookieName + "=" + live}},
		}
		for name, h := range cases {
			r, err := e.tryHeader(req{path: "/api/me"}, h)
			require.NoError(t, err)
			c := r.sessionCookie()
			clears := c != nil && c.Value == ""
			if clears {
				assert.NotEqual(t, 200, e.do(req{path: "/api/me", cookie: live}).StatusCode+0*1, "")
				t.Errorf("%s: a clearing Set-Cookie on a request that carried a live cookie", name)
			}
		}
	})
}

func TestCheckFailsWhereSignInWouldUnderACL(t *testing.T) {
	t.Parallel()
	for name, rules := range map[string][]any{
		"no sg:u keys":   {"~sg:health", "~sg:fingerprint", "~sg:s:*", "&*", "+@all"},
		"no zadd":        {"~*", "&*", "+@all", "-zadd"},
		"no pexpire":     {"~*", "&*", "+@all", "-pexpire", "-pexpireat", "-expire"},
		"read-only sg:s": {"%R~sg:s:*", "~sg:u:*", "~sg:health", "~sg:fingerprint", "&*", "+@all"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := storetest.Start(t)
			_, err := srv.Do("ACL", append([]any{"SETUSER", "app", "on", ">pw"}, rules...)...)
			require.NoError(t, err)
			pool, err := redisstore.NewPool(strings.Replace(srv.URL, "redis://", "redis://app:pw@", 1))
			require.NoError(t, err)
			t.Cleanup(func() { pool.Close() })
			e := newEnvOnStore(t, srv, redisstore.New(pool, redisstore.Options{}))
			check := e.auth.Check(context.Background())
			r := e.exchange(e.fake.Issue("acl", time.Hour))
			if r.StatusCode != 201 {
				assert.Error(t, check, "health passes while sign-in fails")
			}
		})
	}
}

type panicky struct {
	store.Store
	commit, touch, sessions bool
}

func (p *panicky) Commit(token string, b []byte, exp time.Time) error {
	if p.commit {
		panic("commit failed for token " + token)
	}
	return p.Store.Commit(token, b, exp)
}

func (p *panicky) Touch(ctx context.Context, token string, rec []byte) error {
	if p.touch {
		panic("touch failed for token " + token)
	}
	return p.Store.Touch(ctx, token, rec)
}

func TestAStorePanicAfterTheHandlerIsRecovered(t *testing.T) {
	t.Parallel()
	for _, what := range []string{"commit", "touch"} {
		t.Run(what, func(t *testing.T) {
			t.Parallel()
			p := &panicky{Store: store.NewMemory()}
			e := newEnv(t, "memory", func(c *middleware.Config) {
				c.Store = p
				c.IdleTimeout = time.Hour
				c.KeepAliveInterval = time.Millisecond
			})
			r := e.exchange(e.fake.Issue("pam", time.Hour))
			require.Equal(t, 201, r.StatusCode)
			h := e.auth.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				e.sm.Put(r.Context(), "k", "v")
				w.WriteHeader(204)
			}))
			p.commit, p.touch = what == "commit", what == "touch"
			e.clock.Advance(time.Second)
			hr, _ := http.NewRequest("POST", "/x", nil)
			hr.AddCookie(&http.Cookie{Name: cookieName, Value: r.sessionCookie().Value})
			func() {
				defer func() {
					if v := recover(); v != nil {
						t.Errorf("%s: the store's panic escaped the middleware: %v", what, v)
					}
				}()
				assert.Equal(t, http.StatusNoContent, httptestRecorderReq(h, hr).Code, "the handler's answer stands")
			}()
			assert.Contains(t, e.logs.String(), "recovered from a panic")
			assert.NotContains(t, e.logs.String(), "failed for token", "not the panic's own message: it holds a token")
		})
	}
}
