package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/server"
	"github.com/dsexport/dsexport/tasks"
	"github.com/dsexport/dsexport/tasks/tasksfake"
)

// TestNoDoubleStart covers the guards against starting an export twice: a
// repeated cron request, a manual trigger while the same export runs, and the
// per-project rate.
func TestNoDoubleStart(t *testing.T) {
	// Tasks go to a queue, not to inline polls, so the virtual clock stays
	// in one minute for the rate limit.
	fakeTasks := tasksfake.New(t)
	queue := "projects/dsexport-tests/locations/us-central1/queues/dsexport-poll"
	fakeTasks.AddQueue(queue)
	dispatcher, err := tasks.New(context.Background(), tasks.Config{Queue: queue, Target: tasks.HTTP,
		URL: "https://dsexport.example", ServiceAccount: "tasks@example.iam.gserviceaccount.com", Endpoint: fakeTasks.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer dispatcher.Close()
	peers := testrig.New(t, maxPolls, func(c *poller.Config) {
		c.CronWindow = time.Hour
		c.StartsPerMinute = 3
		c.Dispatcher = dispatcher
	})
	srv := httptest.NewServer(server.New(server.Config{
		Poller: peers.Poller, Logger: peers.Logger,
		Defaults: poller.ExportRequest{Project: peers.Project, OutputURLPrefix: "gs://example-backups/daily",
			Kinds: []string{"User", "Order"}, Namespaces: []string{"", "tenant-a"}},
	}))
	defer srv.Close()
	r := &rig{url: srv.URL, admin: peers.Admin, slack: peers.Slack, store: peers.Store, project: peers.Project}
	r.admin.Script(adminfake.Running("PROCESSING", 1, 10, 1, 10))

	status, body := r.do(t, http.MethodGet, "/cron/export", "", nil)
	if status != http.StatusAccepted {
		t.Fatalf("GET /cron/export = %d %s; want 202", status, body)
	}
	first := decodeRecord(t, body)
	// App Engine retries the cron request: 200 with the same export, nothing started.
	status, body = r.do(t, http.MethodGet, "/cron/export", "", nil)
	if got, want := status, http.StatusOK; got != want {
		t.Fatalf("repeated GET /cron/export = %d %s; want %d", got, body, want)
	}
	if got := decodeRecord(t, body).Name; got != first.Name {
		t.Errorf("repeated cron answered %s; want %s", got, first.Name)
	}

	// A manual trigger of the same filter while it runs: 409 with its name.
	defaults := `{"kinds":["User","Order"],"namespaces":["","tenant-a"]}`
	status, body = r.postJSON(t, "/export", defaults)
	if got, want := status, http.StatusConflict; got != want {
		t.Fatalf("POST /export while running = %d %s; want %d", got, body, want)
	}
	var conflict struct{ Error, Name string }
	if err := json.Unmarshal(body, &conflict); err != nil || conflict.Name != first.Name || !strings.Contains(conflict.Error, `"force": true`) {
		t.Errorf("409 body = %s; want the running export's name and how to force", body)
	}
	if got := len(r.admin.Exports()); got != 1 {
		t.Fatalf("Admin API got %d exports; want 1", got)
	}
	if status, body = r.postJSON(t, "/export", `{"force":true}`); status != http.StatusAccepted {
		t.Fatalf(`POST /export {"force":true} = %d %s; want 202`, status, body)
	}
	if status, body = r.postJSON(t, "/export", `{"kinds":["Invoice"]}`); status != http.StatusAccepted {
		t.Fatalf("POST /export of another filter = %d %s; want 202", status, body)
	}
	// Three starts this minute: the fourth is refused before the Admin API.
	status, body = r.postJSON(t, "/export", `{"kinds":["Payment"]}`)
	if got, want := status, http.StatusTooManyRequests; got != want {
		t.Fatalf("fourth start in a minute = %d %s; want %d", got, body, want)
	}
	if got := len(r.admin.Exports()); got != 3 {
		t.Errorf("Admin API got %d exports; want 3", got)
	}
	if status, body = r.postJSON(t, "/export", `{"force":"yes"}`); status != http.StatusBadRequest || !strings.Contains(errorMessage(t, body), `"force"`) {
		t.Errorf(`POST /export {"force":"yes"} = %d %s; want 400 naming "force"`, status, body)
	}
	// Another request is starting the same export (it holds the filter's
	// reservation): 409 with Retry-After, and nothing started.
	peers.Clock.Advance(time.Minute) // out of the full minute
	filter := poller.FilterKey(peers.Project, []string{"Audit"}, []string{"", "tenant-a"})
	if _, err := peers.Store.BeginStart(context.Background(), poller.StartRequest{Project: peers.Project, FilterKey: filter,
		Trigger: poller.TriggerManual, Force: true, Holder: "another request"}, peers.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv.URL+"/export", "application/json", strings.NewReader(`{"kinds":["Audit"],"force":true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || resp.Header.Get("Retry-After") == "" {
		t.Errorf("POST /export while another request starts it = %d, Retry-After %q; want 409 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if got := len(r.admin.Exports()); got != 3 {
		t.Errorf("Admin API got %d exports; want still 3", got)
	}
}

func TestSweepRoute(t *testing.T) {
	r := newRig(t)
	r.admin.Script(adminfake.Successful(10, 100))
	r.slack.SetChannels("#elsewhere")
	status, body := r.do(t, http.MethodGet, "/cron/export", "", nil)
	if status != http.StatusAccepted {
		t.Fatalf("GET /cron/export = %d %s", status, body)
	}
	r.inline.Wait()
	r.slack.SetChannels("#backups")
	status, body = r.do(t, http.MethodGet, "/cron/sweep", "", nil)
	if got, want := status, http.StatusOK; got != want {
		t.Fatalf("GET /cron/sweep = %d %s; want %d", got, body, want)
	}
	var res poller.SweepResult
	if err := json.Unmarshal(body, &res); err != nil || res.Pending != 1 || res.Reported != 1 {
		t.Fatalf("sweep answered %s; want 1 pending, 1 reported", body)
	}
	r.onlyMessage(t)
}
