package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// e2eStepPatience bounds one step of the browser test: generous, since
// Chromium on a busy two-core machine can take many seconds to draw.
const e2eStepPatience = 60 * time.Second

// TestBrowserSignOutOtherDevices drives the demo page in a real headless
// Chromium, as two devices of one user: separate browser contexts, each
// with its own cookie jar. The first is told of the second's sign-in
// (a notice from GET /api/sign-ins), then signs it out. It runs under make e2e (SESSIONGATE_E2E=1),
// which fails when Chromium is missing; screenshots of each step go to
// E2E_SCREENSHOTS (default e2e-screenshots in this directory).
func TestBrowserSignOutOtherDevices(t *testing.T) {
	if os.Getenv("SESSIONGATE_E2E") == "" {
		t.Skip("make e2e runs this (it needs chromium)")
	}
	chromium := chromiumPath(t)
	shots := os.Getenv("E2E_SCREENSHOTS")
	if shots == "" {
		shots = "e2e-screenshots"
	}
	require.NoError(t, os.MkdirAll(shots, 0o755))

	// Step-up after 5 s: signing out the other devices meets the challenge,
	// and the retry's fresh sign-in is recent enough even when a busy
	// machine takes seconds between the page's new token and its retry.
	const stepUpMaxAge = 5 * time.Second
	srv := newTestApp(t, map[string]string{"SESSION_SECRET": "e2e-secret-0123456789abcdef", "SESSION_STEP_UP_MAX_AGE": stepUpMaxAge.String()})

	alloc, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1100, 1000))...)
	defer cancel()
	browser, cancel := chromedp.NewContext(alloc)
	defer cancel()
	require.NoError(t, chromedp.Do(browser), "start chromium")
	laptop, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer cancel()
	phone, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer cancel()
	// A tab lives as long as the context of its first run: open both
	// without a deadline, then bound each step.
	require.NoError(t, chromedp.Do(laptop), "open the laptop's tab")
	require.NoError(t, chromedp.Do(phone), "open the phone's tab")

	step := 0
	shot := func(ctx context.Context, name string) {
		t.Helper()
		step++
		ctx, cancel := context.WithTimeout(ctx, e2eStepPatience)
		defer cancel()
		// Headless Chromium draws only the tab in front.
		_, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) (cdp.Empty, error) {
			return cdp.Call(ctx, t, page.BringToFront, cdp.Empty{})
		})
		require.NoError(t, err)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err, "screenshot %s", name)
		require.NoError(t, os.WriteFile(filepath.Join(shots, fmt.Sprintf("%02d-%s.png", step, name)), png, 0o644))
	}
	// do runs steps on one device, bounded in time.
	do := func(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, e2eStepPatience)
		defer cancel()
		require.NoError(t, chromedp.Do(ctx, steps...), what)
	}
	state := func(s string) chromedp.Action[chromedp.Void] {
		return chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#status[data-state=%q]`, s)))
	}
	sessions := func(n int) chromedp.Action[chromedp.Void] {
		return chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#sessions li.session:nth-child(%d):last-child`, n)))
	}
	signIn := func(ctx context.Context, device string) {
		t.Helper()
		do(ctx, device+" opens the page", chromedp.Navigate(srv.URL), state("signed-out"))
		shot(ctx, device+"-signed-out")
		do(ctx, device+" signs in as alice",
			chromedp.SetValue(chromedp.CSS("#user"), "alice"),
			chromedp.Click(chromedp.CSS("#signin-button")),
			state("signed-in"))
	}

	signIn(laptop, "laptop")
	do(laptop, "the laptop lists its session", sessions(1))
	shot(laptop, "laptop-signed-in")

	signIn(phone, "phone")
	do(phone, "the phone sees both sessions, its own marked", sessions(2),
		chromedp.WaitVisible(chromedp.CSS(`#sessions li.session .badge`)))
	shot(phone, "phone-signed-in")

	do(laptop, "the laptop is told of the phone's sign-in, without a click",
		chromedp.WaitVisible(chromedp.CSS(`#notices li.notice`)))
	textCtx, cancelText := context.WithTimeout(laptop, e2eStepPatience)
	notice, err := chromedp.Run(textCtx, chromedp.TextContent(chromedp.CSS(`#notices li.notice`)))
	cancelText()
	require.NoError(t, err, "the notice's text")
	require.Regexp(t, `^New sign-in from \S.* on Linux · `, notice)
	t.Logf("the laptop's notice: %q", notice)
	shot(laptop, "laptop-new-sign-in")
	do(laptop, "the laptop sees both sessions too", chromedp.Click(chromedp.CSS("#refresh")), sessions(2))
	shot(laptop, "laptop-two-sessions")

	// The laptop's sign-in is now older than the step-up max age (a wait,
	// not a measurement): signing out the others gets the challenge, the
	// page gets a fresh token and retries, on the same session.
	// get runs one action that returns a value on a device, bounded in time.
	get := func(ctx context.Context, what string, a chromedp.Action[string]) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, e2eStepPatience)
		defer cancel()
		v, err := chromedp.Run(ctx, a)
		require.NoError(t, err, what)
		return v
	}
	sessionBefore := get(laptop, "the laptop reads its session id", chromedp.Text(chromedp.CSS("#me-session")))
	time.Sleep(stepUpMaxAge + 500*time.Millisecond)
	do(laptop, "the laptop signs out all other devices, after signing in again",
		chromedp.Click(chromedp.CSS("#signout-others")), sessions(1), state("signed-in"),
		chromedp.WaitVisible(chromedp.CSS("#stepup-note")))
	challenged := get(laptop, "the log shows the challenge", chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#log li")).filter(li => li.textContent.includes("DELETE /auth/sessions/others")).map(li => li.querySelector("b").textContent).reverse().join(",")`))
	require.Equal(t, "401,200", challenged, "the challenge, then the retry with a fresh token")
	sessionAfter := get(laptop, "the laptop reads its session id again", chromedp.Text(chromedp.CSS("#me-session")))
	require.Equal(t, sessionBefore, sessionAfter, "the same session (public id) after the step-up")
	shot(laptop, "laptop-signed-out-others")

	do(phone, "the phone's next action shows it signed out",
		chromedp.Click(chromedp.CSS("#refresh")), state("signed-out-elsewhere"),
		chromedp.WaitVisible(chromedp.CSS("#signin")))
	shot(phone, "phone-signed-out")

	do(laptop, "the laptop is still signed in", chromedp.Click(chromedp.CSS("#refresh")), state("signed-in"), sessions(1))
	do(laptop, "and signs out", chromedp.Click(chromedp.CSS("#signout")), state("signed-out"))
	do(laptop, "for good", chromedp.Reload(), state("signed-out"))
	shot(laptop, "laptop-signed-out")
	t.Logf("screenshots in %s", shots)
}

// chromiumPath finds Debian's chromium (or CHROMIUM); make e2e fails
// without it.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{os.Getenv("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: apt-get install chromium (or set CHROMIUM)")
	return ""
}
