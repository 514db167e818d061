package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// binary is the example app, built once for the process tests by the
// Dockerfile's own build command.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chi-app")
	if err != nil {
		panic(err)
	}
	// Built exactly as the Dockerfile builds it (docker_test.go).
	if binary, err = buildAsDocker(dir); err != nil {
		fmt.Fprintf(os.Stderr, "building chi-app: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is one running chi-app.
type process struct {
	t      *testing.T
	URL    string
	env    []string
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has exited
	logs   *strings.Builder
}

// appPatience bounds how long a test waits for chi-app to start answering:
// generous, since it only ends a test whose app is broken.
const appPatience = 60 * time.Second

// startApp runs chi-app with env (plus a free ADDR) and waits for /healthz.
func startApp(t *testing.T, env map[string]string) *process {
	t.Helper()
	p := &process{t: t}
	for k, v := range env {
		p.env = append(p.env, k+"="+v)
	}
	p.start()
	t.Cleanup(p.stop)
	return p
}

// start runs the binary on a free port and waits until it is healthy. A
// port taken by another process between its choice and the app's bind
// makes the app exit with "address already in use": start then tries
// another port, so p.URL may change.
func (p *process) start() {
	p.t.Helper()
	for range 20 {
		addr := fmt.Sprintf("127.0.0.1:%d", storetest.FreePort(p.t))
		p.URL = "http://" + addr
		p.logs = &strings.Builder{}
		p.cmd = exec.Command(binary)
		p.cmd.Env = append([]string{"ADDR=" + addr, "PATH=" + os.Getenv("PATH")}, p.env...)
		p.cmd.Stdout = p.logs
		p.cmd.Stderr = p.logs
		require.NoError(p.t, p.cmd.Start())
		exited := make(chan struct{})
		go func(cmd *exec.Cmd) { cmd.Wait(); close(exited) }(p.cmd)
		p.exited = exited
		if p.healthy() {
			return
		}
		if !strings.Contains(p.logs.String(), "address already in use") {
			p.t.Fatalf("chi-app exited:\n%s", p.logs)
		}
	}
	p.t.Fatal("chi-app: every port tried was taken before the app could bind it")
}

// healthy waits for /healthz to answer 200. It returns false when the
// process exited first, and fails the test when neither happens.
func (p *process) healthy() bool {
	p.t.Helper()
	// A short timeout per poll: whatever holds the port may never answer
	// (it decides nothing, the next poll asks again).
	client := &http.Client{Timeout: time.Second}
	deadline := time.NewTimer(appPatience)
	defer deadline.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-p.exited:
			return false
		case <-deadline.C:
			p.stop()
			p.t.Fatalf("chi-app did not become healthy:\n%s", p.logs)
		case <-poll.C:
			if res, err := client.Get(p.URL + "/healthz"); err == nil {
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					return true
				}
			}
		}
	}
}

func (p *process) stop() {
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *process) restart() { p.stop(); p.start() }

type call struct {
	method, path, bearer, cookie string
}

type answer struct {
	status  int
	body    string
	session string // the session cookie set, if any
}

func (p *process) do(c call) answer {
	p.t.Helper()
	a, err := p.try(context.Background(), c)
	require.NoError(p.t, err)
	return a
}

func (p *process) try(ctx context.Context, c call) (answer, error) {
	if c.method == "" {
		c.method = http.MethodGet
	}
	req, _ := http.NewRequestWithContext(ctx, c.method, p.URL+c.path, nil)
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.cookie != "" {
		// "session" in dev mode (plain http), "__Host-session" when Secure.
		req.AddCookie(&http.Cookie{Name: "session", Value: c.cookie})
		req.AddCookie(&http.Cookie{Name: middleware.DefaultCookieName, Value: c.cookie})
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, body: string(b)}
	for _, ck := range res.Cookies() {
		if ck.Name == "session" || ck.Name == middleware.DefaultCookieName {
			a.session = ck.Value
		}
	}
	return a, nil
}

// sharedRedisEnv starts a fake Plurality and a Redis for processes to
// share.
func sharedRedisEnv(t *testing.T) (*providertest.Plurality, map[string]string) {
	fake := providertest.NewPlurality()
	t.Cleanup(fake.Close)
	env := pluralityEnv(fake)
	env["SESSION_STORE"] = "redis"
	env["REDIS_URL"] = storetest.Start(t).URL
	return fake, env
}

func pluralityEnv(fake *providertest.Plurality) map[string]string {
	return map[string]string{
		"PROVIDER":                "plurality",
		"PLURALITY_API_URL":       fake.URL,
		"PLURALITY_CLIENT_ID":     fake.ClientID,
		"PLURALITY_CLIENT_SECRET": fake.ClientSecret,
		"SESSION_SECRET":          "a-secret-shared-by-all-processes",
	}
}

// TestProcessValidatesOnce runs every validate-once property against the
// real binary, counting upstream calls, on each store.
func TestProcessValidatesOnce(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"memory", "redis"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			fake := providertest.NewPlurality()
			defer fake.Close()
			env := pluralityEnv(fake)
			env["SESSION_STORE"] = kind
			if kind == "redis" {
				env["REDIS_URL"] = storetest.Start(t).URL
			}
			app := startApp(t, env)
			calls := func() int64 { return fake.Calls() }

			// Exchange, then the cookie alone: no upstream call.
			token := fake.Issue("alice", time.Hour)
			ex := app.do(call{method: "POST", path: "/auth/session", bearer: token})
			require.Equal(t, http.StatusCreated, ex.status, ex.body)
			require.NotEmpty(t, ex.session)
			for range 10 {
				me := app.do(call{path: "/api/me", cookie: ex.session})
				require.Equal(t, http.StatusOK, me.status)
				assert.JSONEq(t, `{"user":{"id":"alice","provider":"plurality"}}`, me.body)
			}
			assert.EqualValues(t, 1, calls(), "cookie requests make no upstream call")

			// 200 concurrent first requests with one new token: one call.
			fake.SetFault(providertest.Fault{Delay: 200 * time.Millisecond})
			shared := fake.Issue("bob", time.Hour)
			var wg sync.WaitGroup
			statuses := make([]int, 200)
			for i := range statuses {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if a, err := app.try(context.Background(), call{path: "/api/me", bearer: shared}); err == nil {
						statuses[i] = a.status
					}
				}()
			}
			wg.Wait()
			fake.SetFault(providertest.Fault{})
			for i, s := range statuses {
				require.Equal(t, http.StatusOK, s, "request %d", i)
			}
			assert.EqualValues(t, 2, calls(), "one upstream call for 200 concurrent first requests")

			// A bearer-only client: one call for the token's whole life.
			for range 20 {
				require.Equal(t, http.StatusOK, app.do(call{path: "/api/me", bearer: shared}).status)
			}
			assert.EqualValues(t, 2, calls())

			// A browser that switches users gets a new session; the old one ends.
			carol := fake.Issue("carol", time.Hour)
			sw := app.do(call{path: "/api/me", cookie: ex.session, bearer: carol})
			require.Equal(t, http.StatusOK, sw.status)
			assert.Contains(t, sw.body, `"carol"`)
			assert.NotEmpty(t, sw.session)
			assert.NotEqual(t, ex.session, sw.session)
			assert.Equal(t, http.StatusUnauthorized, app.do(call{path: "/api/me", cookie: ex.session}).status)
			assert.EqualValues(t, 3, calls())

			// The same rejected token 100 times: one call.
			bad := fake.Issue("dave", time.Hour)
			fake.Revoke(bad)
			for range 100 {
				require.Equal(t, http.StatusUnauthorized, app.do(call{path: "/api/me", bearer: bad}).status)
			}
			assert.EqualValues(t, 4, calls(), "rejections are cached")

			// Upstream errors are not cached as rejections.
			fake.SetFault(providertest.Fault{Status: http.StatusServiceUnavailable})
			erin := fake.Issue("erin", time.Hour)
			assert.Equal(t, http.StatusServiceUnavailable, app.do(call{path: "/api/me", bearer: erin}).status)
			fake.SetFault(providertest.Fault{})
			assert.Equal(t, http.StatusOK, app.do(call{path: "/api/me", bearer: erin}).status)
			assert.EqualValues(t, 6, calls())

			// Oversized or out-of-alphabet tokens: 401, no call.
			assert.Equal(t, http.StatusUnauthorized, app.do(call{path: "/api/me", bearer: strings.Repeat("a", 8<<10+1)}).status)
			assert.Equal(t, http.StatusUnauthorized, app.do(call{path: "/api/me", bearer: "../../etc"}).status)
			assert.EqualValues(t, 6, calls())
		})
	}
}

// TestProcessesShareRedis: a session minted by one process is honoured by
// a second one on the same Redis, and survives a restart.
func TestProcessesShareRedis(t *testing.T) {
	t.Parallel()
	fake, env := sharedRedisEnv(t)
	one, two := startApp(t, env), startApp(t, env)

	token := fake.Issue("alice", time.Hour)
	ex := one.do(call{method: "POST", path: "/auth/session", bearer: token})
	require.Equal(t, http.StatusCreated, ex.status)

	assert.Equal(t, http.StatusOK, two.do(call{path: "/api/me", cookie: ex.session}).status, "the other process honours the cookie")
	bearerOnly := two.do(call{path: "/api/me", bearer: token})
	assert.Equal(t, http.StatusOK, bearerOnly.status)
	// A bearer-only client is not sent the session again; the explicit
	// exchange hands it out.
	again := two.do(call{method: "POST", path: "/auth/session", bearer: token})
	assert.Equal(t, http.StatusOK, again.status)
	assert.Equal(t, ex.session, again.session, "and finds the session minted from the token")
	assert.EqualValues(t, 1, fake.Calls(), "without asking the upstream again")

	one.restart()
	assert.Equal(t, http.StatusOK, one.do(call{path: "/api/me", cookie: ex.session}).status, "sessions survive an app restart")
	assert.EqualValues(t, 1, fake.Calls())
}

// TestProcessesManageSessions: three clients of one user on two processes
// sharing Redis; sign out all but current, then all, seen from both.
func TestProcessesManageSessions(t *testing.T) {
	t.Parallel()
	fake, env := sharedRedisEnv(t)
	apps := []*process{startApp(t, env), startApp(t, env)}

	agents := []string{
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.51 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
	}
	var tokens, sessions [3]string
	for i, ua := range agents {
		tokens[i] = fake.Issue("uma", time.Hour)
		req, _ := http.NewRequest("POST", apps[i%2].URL+"/auth/session", nil)
		req.Header.Set("Authorization", "Bearer "+tokens[i])
		req.Header.Set("User-Agent", ua)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusCreated, res.StatusCode)
		sessions[i] = res.Header.Get("X-Session-Token")
	}

	for _, app := range apps {
		list := app.do(call{path: "/auth/sessions", cookie: sessions[0]})
		require.Equal(t, http.StatusOK, list.status)
		var body struct {
			Sessions []struct {
				Current bool
				Device  struct {
					Family string
					OS     struct{ Family string }
					Device struct{ Family string }
				}
			}
		}
		require.NoError(t, json.Unmarshal([]byte(list.body), &body))
		require.Len(t, body.Sessions, 3)
		seen := map[string]bool{}
		for _, s := range body.Sessions {
			seen[s.Device.Family+"/"+s.Device.OS.Family+"/"+s.Device.Device.Family] = true
		}
		assert.Equal(t, map[string]bool{"Chrome/Mac OS X/Mac": true, "Firefox/Windows/Computer": true, "Safari/iOS/iPhone": true}, seen)
	}

	others := apps[0].do(call{method: "DELETE", path: "/auth/sessions/others", cookie: sessions[0]})
	require.Equal(t, http.StatusOK, others.status)
	for _, app := range apps {
		assert.Equal(t, http.StatusOK, app.do(call{path: "/api/me", cookie: sessions[0]}).status, "A keeps its session")
		for i := 1; i < 3; i++ {
			assert.Equal(t, http.StatusUnauthorized, app.do(call{path: "/api/me", cookie: sessions[i]}).status, "B and C at once, on either process")
		}
	}

	all := apps[1].do(call{method: "DELETE", path: "/auth/sessions", cookie: sessions[0]})
	require.Equal(t, http.StatusNoContent, all.status)
	for _, app := range apps {
		for i := range 3 {
			assert.Equal(t, http.StatusUnauthorized, app.do(call{path: "/api/me", cookie: sessions[i]}).status, "cookies replayed stay 401")
			assert.Equal(t, http.StatusUnauthorized, app.do(call{path: "/api/me", bearer: tokens[i]}).status, "frontend tokens replayed stay 401")
		}
	}
}

// TestProcessRefusesOversizedRequests: the binary runs with
// productionLimits: a body over 4 KiB gets 413 and headers over 32 KiB get
// 431 (net/http's defaults take 1 MiB of headers and any body), and the
// app goes on answering.
func TestProcessRefusesOversizedRequests(t *testing.T) {
	t.Parallel()
	app := startApp(t, map[string]string{})
	client := &http.Client{Timeout: appPatience}

	body := strings.NewReader(strings.Repeat("x", int(productionLimits.MaxBodyBytes)+1))
	res, err := client.Post(app.URL+"/auth/session", "application/json", body)
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
	assert.Contains(t, string(b), `"error":"request_too_large"`)

	req, _ := http.NewRequest(http.MethodGet, app.URL+"/healthz", nil)
	req.Header.Set("X-Pad", strings.Repeat("p", productionLimits.MaxHeaderBytes+8<<10))
	res, err = client.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, res.StatusCode)

	assert.Equal(t, http.StatusOK, app.do(call{path: "/healthz"}).status)
}
