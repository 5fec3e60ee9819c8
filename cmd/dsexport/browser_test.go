//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/notifier/slackfake"
)

// TestStatusPageInBrowser loads the status page of a real serve in headless
// Chromium: five exports made through the HTTP API (three successes, one of
// them shrunk, a failure, and one still running), the DOM as the browser
// built it checked for the table, the trend charts and the badges, and
// screenshots at desktop and phone sizes.
//
// With DSEXPORT_SCREENSHOTS=DIR the screenshots are also written to DIR as
// status-page.png and status-page-phone.png; a relative DIR is taken from the
// module root, so DSEXPORT_SCREENSHOTS=docs refreshes the README's pictures:
//
//	DSEXPORT_SCREENSHOTS=docs go test -count=1 -run StatusPageInBrowser ./cmd/dsexport
func TestStatusPageInBrowser(t *testing.T) {
	browser := findChromium(t)
	host := emulatortest.Host(t)
	project := emulatortest.Project(t)
	admin := adminfake.New(t)
	slack := slackfake.New(t, "xoxb-browser")
	vars := map[string]string{
		"PORT":                   "0",
		"GOOGLE_CLOUD_PROJECT":   project,
		"DSEXPORT_OUTPUT_PREFIX": "gs://example-backups/daily",
		"DSEXPORT_KINDS":         "User,Order",
		"DSEXPORT_NAMESPACES":    "(default)",
		"DSEXPORT_POLL_INTERVAL": "50ms",
		"DSEXPORT_POLL_SCHEDULE": "fixed",
		// The running export is still polled when the screenshots are taken.
		"DSEXPORT_MAX_POLLS":      "100000",
		"DSEXPORT_TIMEZONE":       "Asia/Tokyo",
		"DSEXPORT_ADMIN_ENDPOINT": admin.URL(),
		"DATASTORE_EMULATOR_HOST": host,
		"SLACK_TOKEN":             "xoxb-browser",
		"SLACK_CHANNEL":           "#backups",
		"SLACK_API_URL":           slack.URL(),
	}
	srv := serveInProcess(t, vars, []string{"serve"})
	defer func() {
		if err := srv.stop(); err != nil {
			t.Errorf("serve: %v\n%s", err, srv.stderr.String())
		}
	}()
	base := srv.base

	const denied = "Service account service-123456789@gcp-sa-datastore.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage object."
	exports := []struct {
		path   string // the route that starts it
		script []adminfake.Step
		want   string // the outcome to wait for; "" is still running
	}{
		{"/cron/export", []adminfake.Step{adminfake.Running("PROCESSING", 600_000, 1_200_000, 861_234_560, 1_718_000_000), adminfake.Successful(1_204_331, 1_728_716_275)}, "success"},
		// 15% fewer entities than the one before: a shrink warning.
		{"/export", []adminfake.Step{adminfake.Successful(1_023_680, 1_470_021_833)}, "success"},
		{"/export", []adminfake.Step{adminfake.Failed(7, denied)}, "failure"},
		{"/export", []adminfake.Step{adminfake.Running("PROCESSING", 900_000, 1_230_000, 1_288_490_188, 1_760_936_591), adminfake.Successful(1_229_517, 1_771_674_009)}, "success"},
		{"/export", []adminfake.Step{adminfake.Running("PROCESSING", 771_000, 1_240_000, 1_084_479_242, 1_782_411_428)}, ""},
	}
	var ids []string
	for i, e := range exports {
		admin.Script(e.script...)
		name := startExportAt(t, base, e.path)
		id := name[strings.LastIndexByte(name, '/')+1:]
		ids = append(ids, id)
		eventually(t, fmt.Sprintf("export %d (%s) to be recorded as %q", i, id, e.want), func() bool {
			rec := fetchExport(t, base, id)
			if e.want == "" {
				return rec.State == "PROCESSING" && rec.Polls > 0
			}
			return rec.Outcome == e.want && rec.Reported
		})
	}

	dom := chromiumRun(t, browser, "--dump-dom", base+"/")
	rows := regexp.MustCompile(`(?s)<table class="stack" id="exports">.*?<tbody>(.*?)</tbody>`).FindStringSubmatch(dom)
	if rows == nil {
		t.Fatalf("the status page has no exports table:\n%s", dom)
	}
	if got := strings.Count(rows[1], "<tr>"); got != len(exports) {
		t.Errorf("the exports table has %d rows; want %d", got, len(exports))
	}
	for _, id := range ids {
		if !strings.Contains(rows[1], `href="/exports/`+id+`"`) {
			t.Errorf("the exports table does not link export %s", id)
		}
	}
	// Newest first: the running export heads the table.
	if i, j := strings.Index(rows[1], ids[len(ids)-1]), strings.Index(rows[1], ids[0]); i > j {
		t.Errorf("the exports table is not newest first")
	}
	for _, want := range []struct{ what, re string }{
		{"three trend charts", `(?s)(<svg class="chart"[^>]*role="img".*?</svg>.*?){3}`},
		{"the entities chart", `<svg class="chart"[^>]*aria-label="Entities exported\.`},
		{"a line of three successes", `<path class="s1" d="M[\d.]+ [\d.]+ L[\d.]+ [\d.]+ L[\d.]+ [\d.]+"`},
		{"the shrink mark", `<polygon class="shrink"`},
		{"a succeeded badge", `<span class="badge ok">succeeded</span>`},
		{"a failed badge", `<span class="badge bad">failed</span>`},
		{"a running badge", `<span class="badge run">running</span>`},
		{"a shrink badge", `<span class="badge warn">shrink</span>`},
		{"the glance at the last backup", `(?s)<section class="glance ok"[^>]*>.*?Last backup: succeeded`},
		{"the running export's progress", `<progress max="100" value="62"`},
		{"a restore command", `<code class="cmd">gcloud datastore import gs://example-backups/daily/`},
		{"the failure's error", `does not have storage.objects.create access`},
		{"times in DSEXPORT_TIMEZONE", `JST</time>`},
	} {
		if !regexp.MustCompile(want.re).MatchString(dom) {
			t.Errorf("the status page lacks %s (%s)", want.what, want.re)
		}
	}

	// The running export's own page charts its progress.
	page := chromiumRun(t, browser, "--dump-dom", base+"/exports/"+ids[len(ids)-1])
	for _, want := range []string{`<svg class="chart"`, `aria-label="Progress over time.`, `<table class="stack" id="snapshots">`, `<span class="badge run">running</span>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the running export's page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("the status page as Chromium built it:\n%s", dom)
	}

	shots := t.TempDir()
	for _, s := range []struct {
		file string
		w, h int
	}{{"status-page.png", 1280, 1600}, {"status-page-phone.png", 390, 844}} {
		file := filepath.Join(shots, s.file)
		chromiumRun(t, browser, "--screenshot="+file, fmt.Sprintf("--window-size=%d,%d", s.w, s.h), "--hide-scrollbars", base+"/")
		checkPNG(t, file, s.w, s.h)
		if dir := screenshotDir(t); dir != "" {
			copyFile(t, file, filepath.Join(dir, s.file))
			t.Logf("wrote %s", filepath.Join(dir, s.file))
		}
	}
}

// findChromium is Debian's chromium, or another name for it. Without one the
// test is skipped, but not in CI, whose .ci/run installs it.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no headless browser: install Debian's chromium package (apt-get install chromium), as .ci/run does"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// chromiumRun runs headless Chromium with args after the flags that work on a
// closed network, with a profile of its own, and returns what it printed on
// stdout. It is killed, with every process it started, after 60s.
func chromiumRun(t *testing.T, browser string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	flags := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(),
	}
	cmd := exec.CommandContext(ctx, browser, append(flags, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: no answer within 60s\n%s", browser, strings.Join(args, " "), tailOf(errOut.String(), 3000))
	}
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", browser, strings.Join(args, " "), err, tailOf(errOut.String(), 3000))
	}
	return out.String()
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// startExportAt starts an export through the HTTP API and returns its operation name.
func startExportAt(t *testing.T, base, path string) string {
	t.Helper()
	var resp *http.Response
	var err error
	if path == "/cron/export" {
		resp, err = http.Get(base + path)
	} else {
		resp, err = http.Post(base+path, "application/json", strings.NewReader("{}"))
	}
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("%s = %d %s; want %d", path, resp.StatusCode, body, http.StatusAccepted)
	}
	var started struct{ Name string }
	if err := json.Unmarshal(body, &started); err != nil || started.Name == "" {
		t.Fatalf("%s body %s: %v; want the operation name", path, body, err)
	}
	return started.Name
}

type exportJSON struct {
	State    string
	Outcome  string
	Polls    int
	Reported bool
}

// fetchExport reads an export through the JSON API.
func fetchExport(t *testing.T, base, id string) exportJSON {
	t.Helper()
	resp, err := http.Get(base + "/api/exports/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct{ Export exportJSON }
	if resp.StatusCode != http.StatusOK {
		return v.Export // not recorded yet
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("GET /api/exports/%s: %v", id, err)
	}
	return v.Export
}

// checkPNG fails unless file is a PNG of w×h pixels with more in it than a
// blank page.
func checkPNG(t *testing.T, file string, w, h int) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", file, err)
	}
	if cfg.Width != w || cfg.Height != h {
		t.Errorf("screenshot %s is %dx%d; want %dx%d", filepath.Base(file), cfg.Width, cfg.Height, w, h)
	}
	if len(data) < 20_000 {
		t.Errorf("screenshot %s is only %d bytes: a blank or broken page?", filepath.Base(file), len(data))
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot %s: %v", file, err)
	}
	colours := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y && len(colours) < 50; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl, a := img.At(x, y).RGBA()
			colours[[4]uint32{r, g, bl, a}] = true
		}
	}
	if len(colours) < 50 {
		t.Errorf("screenshot %s has only %d colours: a blank or broken page?", filepath.Base(file), len(colours))
	}
}

// screenshotDir is DSEXPORT_SCREENSHOTS, relative to the module root, or "".
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("DSEXPORT_SCREENSHOTS")
	if dir == "" || filepath.IsAbs(dir) {
		return dir
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		parent := filepath.Dir(root)
		if parent == root {
			t.Fatalf("DSEXPORT_SCREENSHOTS=%s: no go.mod above the test's directory to take it from", dir)
		}
		root = parent
	}
	return filepath.Join(root, dir)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
