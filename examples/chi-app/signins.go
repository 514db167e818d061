package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/useragent"
)

// The sign-in feed's bounds: the latest signInsPerUser sign-ins of each
// of the signInUsers users seen last (the least recently signed-in users
// go first). About 200 bytes a sign-in: 5 MB at most.
const (
	signInsPerUser = 5
	signInUsers    = 5000
)

// signIn is one sign-in as GET /api/sign-ins shows it.
type signIn struct {
	Session  string    `json:"session"` // the session's public id
	Device   string    `json:"device"`  // "Chrome on macOS"
	IP       string    `json:"ip"`
	Provider string    `json:"provider"`
	Time     time.Time `json:"time"`
	Current  bool      `json:"current"` // the session of the request
}

// signInFeed keeps the latest sign-ins of each user, from the
// middleware's minted events (a device's session continued is no new
// sign-in), in this process's memory: a demo of what an application does
// with them (mail, a push, a notice on its page). It is an Observer; safe
// for concurrent use.
type signInFeed struct {
	log   *slog.Logger
	mu    sync.Mutex // guards each user's slice
	users *lru.Cache[userKey, []signIn]
}

type userKey struct{ provider, user string }

func newSignInFeed(log *slog.Logger) *signInFeed {
	users, _ := lru.New[userKey, []signIn](signInUsers)
	return &signInFeed{log: log, users: users}
}

// Observe keeps a new sign-in, newest first, and logs it.
func (f *signInFeed) Observe(_ context.Context, e middleware.Event) {
	if e.Kind != middleware.EventMinted || e.Reason == middleware.ReasonContinued {
		return
	}
	s := signIn{Session: e.SessionID, Device: deviceName(e.Device), IP: e.ClientIP, Provider: e.Provider, Time: e.Time.UTC()}
	f.log.Info("new sign-in", "user", e.UserID, "provider", e.Provider, "device", s.Device, "ip", s.IP, "session", s.Session)
	k := userKey{e.Provider, e.UserID}
	f.mu.Lock()
	defer f.mu.Unlock()
	old, _ := f.users.Get(k)
	list := make([]signIn, 0, signInsPerUser)
	list = append(list, s)
	list = append(list, old[:min(len(old), signInsPerUser-1)]...)
	f.users.Add(k, list)
}

// Begin is nothing: the feed times no operation.
func (f *signInFeed) Begin(ctx context.Context, _ middleware.Event) context.Context { return ctx }

// of returns the latest sign-ins of a user, newest first, the one of
// session current flagged.
func (f *signInFeed) of(provider, user, current string) []signIn {
	f.mu.Lock()
	list, _ := f.users.Get(userKey{provider, user})
	out := append([]signIn{}, list...)
	f.mu.Unlock()
	for i := range out {
		out[i].Current = out[i].Session == current
	}
	return out
}

// handler is GET /api/sign-ins, behind RequireSession: the signed-in
// user's latest sign-ins, {"signIns": [...]}, newest first, this
// session's flagged "current".
func (f *signInFeed) handler(w http.ResponseWriter, r *http.Request) {
	s, _ := middleware.SessionFrom(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{"signIns": f.of(s.Identity.Provider, s.Identity.UserID, s.ID)})
}

// deviceName says what a person calls a device: "Chrome on macOS".
func deviceName(ua useragent.UserAgent) string {
	browser, os := ua.Family, ua.OS.Family
	if browser == "" || browser == "Other" {
		browser = "an unknown browser"
	}
	os = strings.Replace(os, "Mac OS X", "macOS", 1)
	if os == "" || os == "Other" {
		return browser
	}
	return browser + " on " + os
}
