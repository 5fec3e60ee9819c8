package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/notifier/slackfake"
	"github.com/dsexport/dsexport/secrets/secretsfake"
	"github.com/dsexport/dsexport/tasks/tasksfake"
)

func TestMain(m *testing.M) { os.Exit(emulatortest.Main(m)) }

// env is the environment vars make. The check of an export's files is
// off unless a test turns it on: most tests' fake exports have no files.
func env(vars map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := vars[k]; ok || k != "DSEXPORT_VERIFY" {
			return v
		}
		return "off"
	}
}

// eventually waits for cond, which depends on work in other goroutines.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var listeningRE = regexp.MustCompile(`listening on (http://\S+)`)

// served is `dsexport serve` run in this process by serveInProcess.
type served struct {
	base           string
	stdout, stderr *testrig.SyncBuffer
	cancel         context.CancelFunc
	done           chan error
}

// serveInProcess runs run(args) (nil: as App Engine starts it, without
// arguments) with vars as its environment, and waits until it listens.
func serveInProcess(t *testing.T, vars map[string]string, args []string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{stdout: &testrig.SyncBuffer{}, stderr: &testrig.SyncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- run(ctx, args, env(vars), s.stdout, s.stderr) }()
	t.Cleanup(cancel)
	eventually(t, "serve to listen", func() bool {
		select {
		case err := <-s.done:
			t.Fatalf("serve returned early: %v\n%s", err, s.stderr.String())
		default:
		}
		if m := listeningRE.FindStringSubmatch(s.stdout.String()); m != nil {
			s.base = strings.Replace(m[1], "[::]", "127.0.0.1", 1)
		}
		return s.base != ""
	})
	return s
}

// stop ends serve as SIGTERM would and returns what run returned.
func (s *served) stop() error {
	s.cancel()
	return <-s.done
}

// TestServeEndToEnd runs the real program: serve, a cron request, the export
// against the fake Admin API, the polls, the snapshots in the emulator, and
// one Slack message.
func TestServeEndToEnd(t *testing.T) {
	host := emulatortest.Host(t)
	project := emulatortest.Project(t)
	admin := adminfake.New(t)
	admin.Script(
		adminfake.Running("PROCESSING", 100, 1000, 1e6, 1e7),
		// Three 503s outlast the Admin client's three tries: one failed poll.
		adminfake.HTTPError(http.StatusServiceUnavailable, ""),
		adminfake.HTTPError(http.StatusServiceUnavailable, ""),
		adminfake.HTTPError(http.StatusServiceUnavailable, ""),
		adminfake.Running("PROCESSING", 900, 1000, 9e6, 1e7),
		adminfake.Successful(1000, 1e7),
	)
	slack := slackfake.New(t, "xoxb-e2e")
	vars := map[string]string{
		"PORT":                   "0",
		"GOOGLE_CLOUD_PROJECT":   project,
		"DSEXPORT_OUTPUT_PREFIX": "gs://example-backups/daily",
		"DSEXPORT_KINDS":         "User,Order",
		"DSEXPORT_NAMESPACES":    "(default)",
		"DSEXPORT_POLL_INTERVAL": "5ms",
		// Polls every 5ms, as counted below; the adaptive schedule has its own tests.
		"DSEXPORT_POLL_SCHEDULE":  "fixed",
		"DSEXPORT_MAX_POLLS":      "10",
		"DSEXPORT_TIMEZONE":       "Asia/Tokyo",
		"DSEXPORT_ADMIN_ENDPOINT": admin.URL(),
		"DATASTORE_EMULATOR_HOST": host,
		"SLACK_TOKEN":             "xoxb-e2e",
		"SLACK_CHANNEL":           "#backups",
		"SLACK_API_URL":           slack.URL(),
	}
	srv := serveInProcess(t, vars, []string{"serve"})
	base, stdout, stderr := srv.base, srv.stdout, srv.stderr

	resp, err := http.Get(base + "/cron/export")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusAccepted; got != want {
		t.Fatalf("GET /cron/export = %d %s; want %d", got, body, want)
	}
	var started struct{ Name, State string }
	if err := json.Unmarshal(body, &started); err != nil || started.Name == "" {
		t.Fatalf("GET /cron/export body %s: %v; want a JSON object with the operation name", body, err)
	}

	// With a bot token one message follows the export: posted at the start,
	// updated as it runs, turned into the report, with a reply in its thread.
	eventually(t, "the Slack report", func() bool {
		for _, m := range slack.Messages() {
			if m.ThreadTS != "" {
				return true
			}
		}
		return false
	})
	if err := srv.stop(); err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	}
	var replies []slackfake.Message
	var top []slackfake.Message
	for _, m := range slack.Messages() {
		if m.ThreadTS != "" {
			replies = append(replies, m)
		} else {
			top = append(top, m)
		}
	}
	if len(top) != 1 || len(replies) != 1 || replies[0].ThreadTS != top[0].TS {
		t.Fatalf("Slack got %d messages and %d replies; want one message and one reply in its thread", len(top), len(replies))
	}
	if got := top[0].Versions; len(got) < 2 || got[0].Attachments[0].Title != "Datastore export started" || got[1].Attachments[0].Title != "Datastore export running" {
		t.Errorf("the message was not posted as started, then updated with progress: %d versions", len(got))
	}

	exports := admin.Exports()
	if len(exports) != 1 || exports[0].Project != project || exports[0].Labels["trigger"] != "cron" ||
		strings.Join(exports[0].EntityFilter.Kinds, ",") != "User,Order" || len(exports[0].EntityFilter.NamespaceIds) != 1 {
		t.Errorf("exports = %+v; want one cron export of %s, kinds User,Order, the default namespace", exports, project)
	}
	msgs := top
	att := msgs[0].Attachments[0]
	if got, want := att.Title, "Datastore export succeeded"; got != want {
		t.Errorf("title = %q; want %q", got, want)
	}
	if !strings.Contains(att.Text, "gcloud datastore import gs://example-backups/daily/") {
		t.Errorf("report lacks the restore command:\n%s", att.Text)
	}
	if got, want := msgs[0].Channel, "#backups"; got != want {
		t.Errorf("channel = %q; want %q", got, want)
	}
	var fields string
	for _, f := range att.Fields {
		fields += f.Title + "=" + f.Value + "\n"
	}
	if !strings.Contains(fields, "JST") {
		t.Errorf("times are not in DSEXPORT_TIMEZONE:\n%s", fields)
	}
	if strings.Contains(stdout.String()+stderr.String(), "xoxb-e2e") {
		t.Errorf("the Slack token appears in the output")
	}

	// The store counted 4 polls: 3 readings and 1 failed GET.
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"list", "--json"}, env(vars), &out, &errOut); err != nil {
		t.Fatalf("list --json: %v\n%s", err, errOut.String())
	}
	var listed []map[string]any
	if err := json.Unmarshal(out.Bytes(), &listed); err != nil {
		t.Fatalf("list --json output %s: %v", out.String(), err)
	}
	if len(listed) != 1 {
		t.Fatalf("list --json has %d operations; want 1", len(listed))
	}
	op := listed[0]
	for key, want := range map[string]any{"name": started.Name, "state": "SUCCESSFUL", "done": true, "polls": 4.0, "outcome": "success", "reported": true} {
		if got := op[key]; got != want {
			t.Errorf("list --json %s = %v; want %v", key, got, want)
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"status", started.Name}, env(vars), &out, &errOut); err != nil {
		t.Fatalf("status: %v\n%s", err, errOut.String())
	}
	// Header, then the snapshots: poll 2 was the failed GET, counted but with no snapshot.
	for _, want := range []string{"POLL", "\n0 ", "\n1 ", "\n3 ", "\n4 ", "polls: 4  outcome: success"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestExportWaitAgainstEmulator is the README's local cycle: the Datastore
// emulator is both the store and the export target, and with no Slack the
// report is printed.
func TestExportWaitAgainstEmulator(t *testing.T) {
	host := emulatortest.Host(t)
	project := emulatortest.Project(t)
	vars := map[string]string{
		"DSEXPORT_PROJECT":        project,
		"DSEXPORT_OUTPUT_PREFIX":  "gs://local-backups/" + project,
		"DSEXPORT_ADMIN_ENDPOINT": "http://" + host,
		"DATASTORE_EMULATOR_HOST": host,
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"export", "--wait"}, env(vars), &out, &errOut); err != nil {
		t.Fatalf("export --wait: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{"Datastore export succeeded", "projects/" + project + "/operations/local-", "gcloud datastore import "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("export --wait output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"list"}, env(vars), &out, &errOut); err != nil {
		t.Fatalf("list: %v", err)
	}
	if !strings.Contains(out.String(), "success") || strings.Count(out.String(), "\n") != 2 {
		t.Errorf("list shows:\n%s\nwant a header and one successful export", out.String())
	}
}

// TestSlackTokenFromSecretManager reads the bot token from Secret Manager
// (DSEXPORT_SLACK_TOKEN_SECRET) and posts the report with it.
func TestSlackTokenFromSecretManager(t *testing.T) {
	host := emulatortest.Host(t)
	project := emulatortest.Project(t)
	sm := secretsfake.New(t)
	version := "projects/" + project + "/secrets/dsexport-slack-token/versions/1"
	sm.Put(version, "xoxb-from-secret-manager\n")
	slack := slackfake.New(t, "xoxb-from-secret-manager")
	vars := map[string]string{
		"DSEXPORT_PROJECT":            project,
		"DSEXPORT_OUTPUT_PREFIX":      "gs://local-backups/" + project,
		"DSEXPORT_ADMIN_ENDPOINT":     "http://" + host,
		"DATASTORE_EMULATOR_HOST":     host,
		"DSEXPORT_SLACK_TOKEN_SECRET": strings.Replace(version, "/versions/1", "/versions/latest", 1),
		"DSEXPORT_SECRETS_ENDPOINT":   sm.Addr(),
		"SLACK_CHANNEL":               "#backups",
		"SLACK_API_URL":               slack.URL(),
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"export", "--wait"}, env(vars), &out, &errOut); err != nil {
		t.Fatalf("export --wait: %v\n%s", err, errOut.String())
	}
	msgs := slack.Messages()
	if len(msgs) != 1 {
		t.Fatalf("Slack got %d messages; want 1", len(msgs))
	}
	if got, want := msgs[0].Token, "xoxb-from-secret-manager"; got != want {
		t.Errorf("posted with token %q; want the one from Secret Manager", got)
	}
	if strings.Contains(out.String()+errOut.String(), "xoxb-from-secret-manager") {
		t.Errorf("the token appears in the output")
	}
}

// TestServeOnAppEngine runs serve as App Engine would: cron and tasks are
// believed only with App Engine's headers, the hand-off is an App Engine task
// routed to this service, and the task delivered with its queue header
// finishes the export with one report.
// TestServeUnderDevAppserver starts the program as App Engine's local
// development server does: GAE_ENV=localdev, the port in PORT, and the paths
// of its runtime configuration and port files as arguments. It serves on the
// Local platform, where loopback callers may start an export.
func TestServeUnderDevAppserver(t *testing.T) {
	host := emulatortest.Host(t)
	project := emulatortest.Project(t)
	admin := adminfake.New(t)
	admin.Script(adminfake.Successful(2, 2))
	dir := t.TempDir()
	vars := map[string]string{
		"GAE_ENV": "localdev", "GAE_SERVICE": "dsexport", "GAE_VERSION": "20261201t210000", "GAE_RUNTIME": "go123",
		"RUN_WITH_DEVAPPSERVER": "1", "PORT": "0", "GOOGLE_CLOUD_PROJECT": project,
		"DSEXPORT_OUTPUT_PREFIX": "gs://example-backups/daily", "DSEXPORT_POLL_INTERVAL": "5ms", "DSEXPORT_POLL_SCHEDULE": "fixed",
		"DSEXPORT_ADMIN_ENDPOINT": admin.URL(), "DATASTORE_EMULATOR_HOST": host,
	}
	srv := serveInProcess(t, vars, []string{filepath.Join(dir, "runtime_config"), filepath.Join(dir, "port")})
	if !strings.Contains(srv.stderr.String(), "platform=local") {
		t.Errorf("serve under dev_appserver did not log platform=local:\n%s", srv.stderr.String())
	}
	resp, err := http.Get(srv.base + "/cron/export")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusAccepted; got != want {
		t.Fatalf("GET /cron/export from loopback under dev_appserver = %d; want %d\n%s", got, want, srv.stderr.String())
	}
	if err := srv.stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func TestServeOnAppEngine(t *testing.T) {
	host := emulatortest.Host(t)
	project := emulatortest.Project(t)
	admin := adminfake.New(t)
	admin.Script(adminfake.Running("PROCESSING", 1, 2, 1, 2), adminfake.Successful(2, 2))
	slack := slackfake.New(t, "xoxb-gae")
	queue := "projects/" + project + "/locations/us-central1/queues/dsexport-poll"
	fakeTasks := tasksfake.New(t)
	fakeTasks.AddQueue(queue)
	vars := map[string]string{
		"GAE_ENV": "standard", "GAE_SERVICE": "dsexport", "GAE_VERSION": "20261123t030000",
		"PORT": "0", "GOOGLE_CLOUD_PROJECT": project,
		"DSEXPORT_OUTPUT_PREFIX": "gs://example-backups/daily", "DSEXPORT_POLL_INTERVAL": "5ms", "DSEXPORT_POLL_SCHEDULE": "fixed",
		"DSEXPORT_ADMIN_ENDPOINT": admin.URL(), "DATASTORE_EMULATOR_HOST": host,
		"SLACK_TOKEN": "xoxb-gae", "SLACK_CHANNEL": "#backups", "SLACK_API_URL": slack.URL(), "DSEXPORT_SLACK_PROGRESS": "off",
		"DSEXPORT_TASKS_QUEUE": queue, "DSEXPORT_TASKS_ENDPOINT": fakeTasks.Addr(),
		"DSEXPORT_INVOKERS": "ops@example.com", "DSEXPORT_AUDIENCE": "https://dsexport-dot-" + project + ".appspot.com",
	}
	srv := serveInProcess(t, vars, nil) // App Engine starts it without arguments
	base, stderr := srv.base, srv.stderr
	call := func(method, path string, header map[string]string, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	if got, want := call(http.MethodGet, "/cron/export", nil, ""), http.StatusUnauthorized; got != want {
		t.Errorf("GET /cron/export without the cron header = %d; want %d", got, want)
	}
	if got := len(admin.Exports()); got != 0 {
		t.Fatalf("a refused cron request started %d exports", got)
	}
	if got, want := call(http.MethodGet, "/cron/export", map[string]string{"X-Appengine-Cron": "true"}, ""), http.StatusAccepted; got != want {
		t.Fatalf("GET /cron/export from App Engine cron = %d; want %d\n%s", got, want, stderr.String())
	}
	all := fakeTasks.Tasks()
	if len(all) != 1 {
		t.Fatalf("queue holds %d tasks; want 1", len(all))
	}
	task := all[0].GetAppEngineHttpRequest()
	// Routed to the service, not pinned to this version: a redeploy stops it.
	if task.GetRelativeUri() != "/tasks/poll" || task.GetAppEngineRouting().GetService() != "dsexport" ||
		task.GetAppEngineRouting().GetVersion() != "" {
		t.Fatalf("task = %v; want an App Engine task to /tasks/poll on service dsexport, any serving version", task)
	}
	if got, want := call(http.MethodPost, "/tasks/poll", map[string]string{"Content-Type": "application/json"}, string(task.GetBody())), http.StatusUnauthorized; got != want {
		t.Errorf("POST /tasks/poll without the queue header = %d; want %d", got, want)
	}
	if got, want := call(http.MethodPost, "/tasks/poll", map[string]string{"Content-Type": "application/json", "X-AppEngine-QueueName": "dsexport-poll"}, string(task.GetBody())), http.StatusOK; got != want {
		t.Fatalf("POST /tasks/poll from the queue = %d; want %d\n%s", got, want, stderr.String())
	}
	if got := len(slack.Messages()); got != 1 {
		t.Errorf("Slack got %d reports; want 1", got)
	}
	if !strings.Contains(stderr.String(), `"severity":"WARNING"`) || !strings.Contains(stderr.String(), `"message":"request refused"`) {
		t.Errorf("refusals are not logged as Cloud Logging JSON:\n%s", stderr.String())
	}
	if err := srv.stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// TestExportWaitProgress follows an export from the command line: off a
// terminal, one plain line per poll, then the report.
func TestExportWaitProgress(t *testing.T) {
	host := emulatortest.Host(t)
	project := emulatortest.Project(t)
	admin := adminfake.New(t)
	admin.Script(adminfake.Running("PROCESSING", 250, 1000, 1<<20, 4<<20), adminfake.Running("PROCESSING", 750, 1000, 3<<20, 4<<20), adminfake.Successful(1000, 4<<20))
	vars := map[string]string{
		"DSEXPORT_PROJECT": project, "DSEXPORT_OUTPUT_PREFIX": "gs://example-backups/daily",
		"DSEXPORT_ADMIN_ENDPOINT": admin.URL(), "DATASTORE_EMULATOR_HOST": host, "DSEXPORT_POLL_INTERVAL": "5ms", "DSEXPORT_POLL_SCHEDULE": "fixed",
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"export", "--wait"}, env(vars), &out, &errOut); err != nil {
		t.Fatalf("export --wait: %v\n%s", err, errOut.String())
	}
	got := out.String()
	for _, want := range []string{"poll 1: PROCESSING, entities 250 (25.0%)", "poll 2: PROCESSING, entities 750 (75.0%)", "poll 3: SUCCESSFUL", "Datastore export succeeded"} {
		if !strings.Contains(got, want) {
			t.Errorf("export --wait output lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "poll 3:") > strings.Index(got, "Datastore export succeeded") {
		t.Errorf("the report comes before the last poll line:\n%s", got)
	}
}
