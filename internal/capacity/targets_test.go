//go:build capacity

package capacity

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin/firestorefake"
	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/notifier/slackfake"
	"github.com/dsexport/dsexport/poller"
)

// TestTargets measures one serve looking after many targets (issue 11):
// the real binary with a targets file of CAPACITY_TARGETS (100) targets in
// ten projects: half named databases exported through the Firestore Admin
// API fake (one export each, run to its end first), half watching managed
// backups (a daily schedule and 14 READY backups each; every tenth target's
// newest is three days old, so it raises the missing alarm). The store is
// the Firestore emulator in Datastore mode (pessimistic locking, as new
// databases), in its own database. It prints the time of each sweep over
// all targets (the first records every backup, the next ones find nothing
// new), the Admin API calls per sweep, the status page's time with all the
// rows, and the process's peak RSS, and checks that each alarm and report
// came exactly once. The fake answers each call after CAPACITY_API_LATENCY
// (100ms), about the real API's round trip.
//
//	go test -tags capacity -count=1 -v -run TestTargets ./internal/capacity
func TestTargets(t *testing.T) {
	n := envInt("CAPACITY_TARGETS", 100)
	sweeps := envInt("CAPACITY_SWEEPS", 5)
	latency := envDuration("CAPACITY_API_LATENCY", 100*time.Millisecond)
	host := emulatortest.FirestoreHost(t)
	ops := emulatortest.Project(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "dsexport")
	build(t, bin)

	fs := firestorefake.New(t)
	fs.SetLatency(latency)
	slack := slackfake.New(t, "xoxb-targets")
	now := time.Now().UTC()
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "store: {project: %s, database: dsexport}\ntargets:\n", ops)
	exported, watched, missing := 0, 0, 0
	for i := range n {
		project := fmt.Sprintf("%s-p%d", ops, i%10)
		db := fmt.Sprintf("db-%03d", i)
		name := fmt.Sprintf("t-%03d", i)
		info := fs.AddDatabase(project, db)
		if i%2 == 0 {
			exported++
			fmt.Fprintf(&yaml, "  - {name: %s, project: %s, database: %s, export: {prefix: gs://bucket-%d/%s, schedule: \"every day 03:00\"}}\n",
				name, project, db, i%10, db)
			continue
		}
		watched++
		fmt.Fprintf(&yaml, "  - {name: %s, project: %s, database: %s, backups: {expect: daily, retention: 14d}}\n", name, project, db)
		fs.SetSchedules(project, db, poller.BackupSchedule{Recurrence: poller.Daily, Retention: 14 * 24 * time.Hour})
		newest := 3 * time.Hour
		if i%10 == 1 {
			missing++
			newest = 72 * time.Hour
		}
		for d := range 14 {
			at := now.Add(-newest - time.Duration(d)*24*time.Hour)
			fs.AddBackup(poller.Backup{Name: fmt.Sprintf("projects/%s/locations/nam5/backups/%s-%02d", project, db, d),
				Database: info.Name, DatabaseUID: info.UID, State: poller.BackupReady, SnapshotTime: at,
				ExpireTime: at.Add(14 * 24 * time.Hour), Documents: 100000, Bytes: 1e8})
		}
	}
	fs.ScriptEach(func(firestorefake.ExportCall) []firestorefake.Step {
		return []firestorefake.Step{firestorefake.Running("PROCESSING", 1, 10, 1, 10), firestorefake.Successful(10, 10)}
	})
	config := filepath.Join(dir, "targets.yaml")
	if err := os.WriteFile(config, []byte(yaml.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	port := testrig.FreePort(t)
	base := "http://127.0.0.1:" + port
	env := []string{
		"PATH=" + os.Getenv("PATH"), "PORT=" + port, "DSEXPORT_CONFIG=" + config,
		"DSEXPORT_DISPATCH=inline", "DSEXPORT_SWEEP_EVERY=1000h", // the test sweeps, not serve
		"DSEXPORT_STALE_AFTER=87600h", "DSEXPORT_POLL_SCHEDULE=fixed", "DSEXPORT_POLL_INTERVAL=100ms",
		"DSEXPORT_FIRESTORE_ENDPOINT=" + fs.URL(), "DSEXPORT_ADMIN_ENDPOINT=" + fs.URL(),
		"DATASTORE_EMULATOR_HOST=" + host,
		"SLACK_WEBHOOK_URL=" + slack.WebhookURL(), "DSEXPORT_SLACK_PROGRESS=off",
	}
	logPath := filepath.Join(dir, "serve.log")
	cmd, _, _ := start(t, bin, env, base, logPath)
	pid := cmd.Process.Pid
	get := func(path string) (time.Duration, string) {
		t.Helper()
		began := time.Now()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("GET %s = %d %s\n%s", path, resp.StatusCode, b, tail(readFile(logPath), 4000))
		}
		return time.Since(began), string(b)
	}
	// serve's start-up sweep runs at once, the first watch of every target,
	// which records all their backups: wait for it, then start every export.
	upAt := time.Now()
	for !strings.Contains(readFile(logPath), "msg=sweep first=true") {
		if time.Since(upAt) > 2*time.Minute {
			t.Fatalf("no start-up sweep in 2 minutes\n%s", tail(readFile(logPath), 4000))
		}
		time.Sleep(10 * time.Millisecond)
	}
	firstSweep := time.Since(upAt)
	startAll := time.Now()
	for i := 0; i < n; i += 2 {
		get(fmt.Sprintf("/cron/export?target=t-%03d", i))
	}
	began := time.Now()
	for len(slack.Messages()) < exported+missing && time.Since(began) < 2*time.Minute {
		time.Sleep(50 * time.Millisecond)
	}
	startsTook := time.Since(startAll)

	calls := func() int {
		return fs.Calls(firestorefake.GetDatabase) + fs.Calls(firestorefake.ListBackupSchedules) + fs.Calls(firestorefake.ListBackups)
	}
	var took []time.Duration
	var perSweep []int
	var res struct {
		Pending, BackupsRecorded, Notices int
	}
	var recorded []int
	for range sweeps {
		before := calls()
		d, body := get("/cron/sweep")
		if err := json.Unmarshal([]byte(body), &res); err != nil {
			t.Fatalf("sweep answer %s: %v", body, err)
		}
		took = append(took, d)
		perSweep = append(perSweep, calls()-before)
		recorded = append(recorded, res.BackupsRecorded)
	}
	pageTook, page := get("/")
	apiTook, _ := get("/api/targets")
	st := readStatus(pid)
	cpu := readCPU(t, pid)
	stop(t, cmd)

	var b strings.Builder
	fmt.Fprintf(&b, "targets: %d targets in 10 projects: %d exported (named databases, Firestore Admin API), %d watching managed backups (14 READY each, %d missing the last two days)\n",
		n, exported, watched, missing)
	fmt.Fprintf(&b, "targets: store          Firestore emulator in Datastore mode, database dsexport of %s\n", ops)
	fmt.Fprintf(&b, "targets: exports        %d started and reported in %s\n", exported, startsTook.Round(time.Millisecond))
	fmt.Fprintf(&b, "targets: first sweep    %s after /healthz (serve's start-up sweep: the first watch, recording %d backups)\n", firstSweep.Round(time.Millisecond), 14*watched)
	fmt.Fprintf(&b, "targets: sweeps         %s (later sweeps over all %d targets, recording %v new backups)\n", durations(took), n, recorded)
	fmt.Fprintf(&b, "targets: Admin API      %s per answer (CAPACITY_API_LATENCY); %v calls per sweep (databases.get, backupSchedules.list, backups.list: 3 per watched target)\n", latency, perSweep)
	fmt.Fprintf(&b, "targets: status page    %s for %d KB with %d target rows; /api/targets %s\n", pageTook.Round(time.Millisecond), len(page)/1024, strings.Count(page, `href="/targets/`), apiTook.Round(time.Millisecond))
	fmt.Fprintf(&b, "targets: peak RSS       %.1f MiB (VmHWM); CPU %s over the whole run\n", float64(st["VmHWM"])/1024, cpu.Round(time.Millisecond))
	fmt.Print(b.String())

	// Exactly once: one report per export, one alarm per missing target.
	var reports, alarms int
	seen := map[string]int{}
	for _, m := range slack.Messages() {
		title := m.Attachments[0].Title
		seen[title]++
		switch {
		case strings.Contains(title, "export succeeded"):
			reports++
		case strings.Contains(title, "No new managed backup"):
			alarms++
		}
	}
	if reports != exported || alarms != missing || len(slack.Messages()) != exported+missing {
		t.Errorf("%d reports and %d alarms of %d messages; want %d and %d", reports, alarms, len(slack.Messages()), exported, missing)
	}
	for title, c := range seen {
		if c > 1 {
			t.Errorf("%q posted %d times", title, c)
		}
	}
	if want := 3 * watched; slices.ContainsFunc(perSweep, func(c int) bool { return c != want }) {
		t.Errorf("Admin API calls per sweep %v; want %d", perSweep, want)
	}
}

func durations(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Round(time.Millisecond).String())
	}
	return strings.Join(s, ", ")
}
