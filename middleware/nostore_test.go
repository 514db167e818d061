package middleware_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serveBehind serves h behind e's middleware on a server of its own.
func serveBehind(t *testing.T, e *env, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(e.auth.Handler(h))
	t.Cleanup(srv.Close)
	return srv
}

// get sends GET / to srv with hdr and reads the answer whole.
func get(t *testing.T, srv *httptest.Server, hdr http.Header) resp {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	for k, v := range hdr {
		r.Header[k] = v
	}
	res, err := srv.Client().Do(r)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return resp{Response: res, body: string(b)}
}

// cacheable is what a handler that wants its answer cached writes.
func cacheable(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "public, max-age=600")
	w.Header().Set("Vary", "Accept-Encoding, cookie")
}

// A response that sets or clears the session is never cached, whatever
// the handler wrote and however it wrote it; http.ResponseController
// still reaches the server through the middleware.
func TestResponsesThatCarryASessionAreNeverCached(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		body    string
	}{
		{"public caching, WriteHeader", func(w http.ResponseWriter, r *http.Request) {
			cacheable(w)
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "ok")
		}, "ok"},
		{"Write without WriteHeader", func(w http.ResponseWriter, r *http.Request) {
			cacheable(w)
			io.WriteString(w, "ok")
		}, "ok"},
		{"nothing written", func(w http.ResponseWriter, r *http.Request) {
			cacheable(w)
		}, ""},
		{"io.Copy (ReadFrom)", func(w http.ResponseWriter, r *http.Request) {
			cacheable(w)
			io.Copy(w, strings.NewReader("ok"))
		}, "ok"},
		{"Flush through ResponseController", func(w http.ResponseWriter, r *http.Request) {
			cacheable(w)
			if err := http.NewResponseController(w).Flush(); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Cache-Control", "public") // too late: the header is out
			io.WriteString(w, "flushed")
		}, "flushed"},
		{"Flush through http.Flusher", func(w http.ResponseWriter, r *http.Request) {
			cacheable(w)
			w.(http.Flusher).Flush()
			io.WriteString(w, "flushed")
		}, "flushed"},
		{"an informational status first", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			cacheable(w)
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "ok")
		}, "ok"},
		{"deadlines and full duplex through ResponseController", func(w http.ResponseWriter, r *http.Request) {
			cacheable(w)
			rc := http.NewResponseController(w)
			for _, err := range []error{
				rc.SetReadDeadline(time.Now().Add(time.Hour)),
				rc.SetWriteDeadline(time.Now().Add(time.Hour)),
				rc.EnableFullDuplex(),
			} {
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
			}
			io.WriteString(w, "ok")
		}, "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "memory")
			srv := serveBehind(t, e, tc.handler)
			_, live := e.signIn("ella")

			for what, hdr := range map[string]http.Header{
				"minted":  {"Authorization": {"Bearer " + e.fake.Issue("ella", time.Hour)}},
				"cleared": {"Cookie": {cookieName + "=" + randomToken()}},
			} {
				r := get(t, srv, hdr)
				require.Equal(t, http.StatusOK, r.StatusCode, "%s: %s", what, r.body)
				assert.Equal(t, tc.body, r.body, what)
				require.NotNil(t, r.sessionCookie(), "%s: the response sets or clears the session", what)
				assert.Equal(t, []string{"no-store"}, r.Header.Values("Cache-Control"), what)
				assert.Equal(t, []string{"Accept-Encoding", "cookie", "Authorization"}, varyNames(r.Response),
					"%s: the handler's Vary, merged, each name once", what)
			}

			r := get(t, srv, http.Header{"Cookie": {cookieName + "=" + live}})
			require.Equal(t, http.StatusOK, r.StatusCode)
			assert.Nil(t, r.sessionCookie())
			assert.Equal(t, "public, max-age=600", r.Header.Get("Cache-Control"),
				"a response that does not touch the session is the handler's to shape")
		})
	}
}

func TestVaryStarStays(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	srv := serveBehind(t, e, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "*")
	})
	r := get(t, srv, http.Header{"Authorization": {"Bearer " + e.fake.Issue("fio", time.Hour)}})
	require.NotNil(t, r.sessionCookie())
	assert.Equal(t, []string{"*"}, r.Header.Values("Vary"), "* already varies on everything")
	assert.Equal(t, "no-store", r.Header.Get("Cache-Control"))
}

// A handler can still take over the connection on a request that was
// given a session.
func TestHijackThroughTheMiddleware(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	srv := serveBehind(t, e, func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
		rw.Flush()
	})
	r := get(t, srv, http.Header{"Authorization": {"Bearer " + e.fake.Issue("gus", time.Hour)}})
	assert.Equal(t, http.StatusOK, r.StatusCode)
	assert.Equal(t, "hijacked", r.body)
}
