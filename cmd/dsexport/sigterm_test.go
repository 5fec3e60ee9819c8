package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/notifier/slackfake"
	"github.com/dsexport/dsexport/tasks/tasksfake"
)

// TestSIGTERMMidPoll runs the real binary: a poll task is under way when the
// process gets SIGTERM. The process answers the task 503 (so Cloud Tasks
// retries it), exits 0 within 10 seconds, and the retried task, delivered to
// a new process, finishes the export with one report.
func TestSIGTERMMidPoll(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	host := emulatortest.Host(t)
	project := emulatortest.Project(t)
	bin := filepath.Join(t.TempDir(), "dsexport")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	admin := adminfake.New(t)
	running := adminfake.Running("PROCESSING", 1, 10, 1, 10)
	admin.Script(running, running, running, running, running, running, adminfake.Successful(10, 10))
	slack := slackfake.New(t, "xoxb-sigterm")
	queue := "projects/" + project + "/locations/us-central1/queues/dsexport-poll"
	fakeTasks := tasksfake.New(t)
	fakeTasks.AddQueue(queue)
	port := testrig.FreePort(t)
	base := "http://127.0.0.1:" + port
	env := []string{
		"PATH=/usr/bin:/bin", "PORT=" + port, "GOOGLE_CLOUD_PROJECT=" + project,
		"DSEXPORT_OUTPUT_PREFIX=gs://example-backups/daily",
		"DSEXPORT_POLL_INTERVAL=150ms", "DSEXPORT_MAX_POLLS=20", "DSEXPORT_POLL_SCHEDULE=fixed",
		"DSEXPORT_ADMIN_ENDPOINT=" + admin.URL(), "DATASTORE_EMULATOR_HOST=" + host,
		"SLACK_TOKEN=xoxb-sigterm", "SLACK_CHANNEL=#backups", "SLACK_API_URL=" + slack.URL(),
		// Reports only: the progress message is TestServeEndToEnd's.
		"DSEXPORT_SLACK_PROGRESS=off", "DSEXPORT_VERIFY=off",
		"DSEXPORT_DISPATCH=cloudtasks", "DSEXPORT_TASKS_QUEUE=" + queue, "DSEXPORT_TASKS_URL=" + base,
		"DSEXPORT_TASKS_SERVICE_ACCOUNT=tasks@" + project + ".iam.gserviceaccount.com",
		"DSEXPORT_TASKS_ENDPOINT=" + fakeTasks.Addr(),
	}

	first, firstLog := startServe(t, bin, env, base)
	resp, err := http.Get(base + "/cron/export")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusAccepted; got != want {
		t.Fatalf("GET /cron/export = %d; want %d\n%s", got, want, firstLog)
	}
	tasks := fakeTasks.Tasks()
	if len(tasks) != 1 {
		t.Fatalf("queue holds %d tasks; want 1", len(tasks))
	}
	task := tasks[0].GetHttpRequest()

	// Cloud Tasks delivers the task; the poll is under way when SIGTERM comes.
	answer := make(chan int, 1)
	go func() {
		resp, err := http.Post(task.GetUrl(), "application/json", bytes.NewReader(task.GetBody()))
		if err != nil {
			answer <- 0
			return
		}
		resp.Body.Close()
		answer <- resp.StatusCode
	}()
	name := admin.Names()[0]
	deadline := time.Now().Add(20 * time.Second)
	for admin.Gets(name) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no polls under way\n%s", firstLog)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped := time.Now()
	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- first.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM; want 0\n%s", err, firstLog)
		}
	case <-time.After(10 * time.Second):
		first.Process.Kill()
		t.Fatalf("serve still running 10s after SIGTERM\n%s", firstLog)
	}
	t.Logf("serve exited %v after SIGTERM", time.Since(stopped).Round(time.Millisecond))
	if got, want := <-answer, http.StatusServiceUnavailable; got != want {
		t.Fatalf("the interrupted poll task answered %d; want %d so Cloud Tasks retries it\n%s", got, want, firstLog)
	}
	if got := len(slack.Messages()); got != 0 {
		t.Fatalf("Slack got %d reports before the export ended; want 0", got)
	}
	pollsBefore := admin.Gets(name)

	// Cloud Tasks retries the task; the new instance finishes the export.
	second, secondLog := startServe(t, bin, env, base)
	defer func() {
		second.Process.Signal(syscall.SIGTERM)
		second.Wait()
	}()
	resp, err = http.Post(task.GetUrl(), "application/json", bytes.NewReader(task.GetBody()))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusOK; got != want {
		t.Fatalf("retried task = %d %s; want %d\n%s", got, body, want, secondLog)
	}
	if !strings.Contains(string(body), `"outcome":"success"`) {
		t.Errorf("retried task answered %s; want a successful record", body)
	}
	msgs := slack.Messages()
	if len(msgs) != 1 {
		t.Fatalf("Slack got %d reports; want exactly 1", len(msgs))
	}
	if got, want := msgs[0].Attachments[0].Title, "Datastore export succeeded"; got != want {
		t.Errorf("report title = %q; want %q", got, want)
	}
	// The second instance continued the count: 7 GETs in all reach the success.
	if got, want := admin.Gets(name), 7; got != want {
		t.Errorf("GETs in all = %d (%d before the stop); want %d", got, pollsBefore, want)
	}
}

// startServe starts bin serve and waits for /healthz; its output is in the buffer.
func startServe(t *testing.T, bin string, env []string, base string) (*exec.Cmd, *testrig.SyncBuffer) {
	t.Helper()
	var out testrig.SyncBuffer
	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("serve output:\n%s", out.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd, &out
			}
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("serve did not answer /healthz\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
