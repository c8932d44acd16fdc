package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromium returns the path of a Chromium or Chrome binary, skipping the
// test when there is none (failing under BB_REQUIRE_SERVICES=1: CI
// installs Debian's chromium).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "needs Chromium for the ops page test (apt-get install chromium)"
	if os.Getenv("BB_REQUIRE_SERVICES") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestOpsPageInChromium opens /ops in headless Chromium with the admin
// token, checks that it loads and goes live, that the dialogue counter
// updates after a dialogue request, and that the page logs no console
// errors.
func TestOpsPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser; skipped under -short")
	}
	bin := chromium(t)
	const player, admin = "ops-player-token-00000", "ops-admin-token-000000"
	httpAddr, _, _ := startInProcess(t, "BB_PLAYER_TOKENS", player+"=p1", "BB_ADMIN_TOKEN", admin)

	// Without the admin token: 401.
	if resp := do(t, "GET", httpAddr+pathOps, player, nil, nil); resp.StatusCode != 401 {
		t.Errorf("/ops with a player token = %s, want 401", resp.Status)
	}

	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.UserDataDir(t.TempDir()))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	// Collect console messages from the first navigation on.
	var (
		mu       sync.Mutex
		messages []chromedp.ConsoleMessage
		wg       sync.WaitGroup
	)
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	cctx, stopConsole := context.WithCancel(bctx)
	console := chromedp.Console(cctx)
	wg.Go(func() {
		for m, err := range console {
			if err != nil {
				return
			}
			mu.Lock()
			messages = append(messages, m)
			mu.Unlock()
		}
	})

	setAuth := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Authorization": "Bearer " + admin},
		})
		return err
	})
	if err := chromedp.Do(bctx, setAuth, chromedp.Navigate(httpAddr+pathOps)); err != nil {
		t.Fatal(err)
	}
	// waitText waits until the element's text is want.
	waitText := func(sel, want string) {
		t.Helper()
		var got string
		for range 1000 {
			var err error
			if got, err = chromedp.Run(bctx, chromedp.Text(sel)); err != nil {
				t.Fatalf("text of %s: %v", sel, err)
			}
			if strings.TrimSpace(got) == want {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s = %q, want %q", sel, got, want)
	}
	waitText("#status", "live")
	waitText("#dialogue-requests", "0")

	body := map[string]any{"utterance": map[string]string{"npcId": "guard", "text": "Good morning.", "responsibility": "greeting"}}
	if resp := do(t, "POST", httpAddr+"/bodybroker.dialogue.v1.DialogueService/Say", player, body, nil); resp.StatusCode != 200 {
		t.Fatalf("Say = %s", resp.Status)
	}
	waitText("#dialogue-requests", "1")
	rows, err := chromedp.Run(bctx, chromedp.Nodes("#tiers tr"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Errorf("%d tier rows, want 4", len(rows))
	}

	stopConsole()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, m := range messages {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			t.Errorf("console: %v", m)
		}
	}
}
