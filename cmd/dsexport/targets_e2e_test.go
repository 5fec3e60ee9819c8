package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/datastore"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/admin/firestorefake"
	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/notifier/slackfake"
	"github.com/dsexport/dsexport/poller"
)

// TestTargetsEndToEnd is issue 11's "done when": one serve follows the
// export of a (default) database of one project (Datastore Admin API) and
// of a named database of another (Firestore Admin API), and watches a third
// target's managed backups, each reported to its own channel, exactly once;
// a missing daily backup raises one alarm over several sweeps; and
// dsexport's records are in its own database, none of the exported ones.
// The store is the Firestore emulator in Datastore mode, which keeps
// databases apart as Google does.
func TestTargetsEndToEnd(t *testing.T) {
	host := emulatortest.FirestoreHost(t)
	ops := emulatortest.Project(t)
	shop, crm := ops+"-shop", ops+"-crm"

	ds := adminfake.New(t)
	ds.Script(adminfake.Running("PROCESSING", 10, 100, 1e5, 1e6), adminfake.Successful(100, 1e6))
	fs := firestorefake.New(t)
	fs.AddDatabase(crm, "analytics")
	fs.Script(firestorefake.Running("PROCESSING", 20, 200, 2e5, 2e6), firestorefake.Successful(200, 2e6))
	orders := fs.AddDatabase(crm, "orders")
	now := time.Now().UTC()
	fs.SetSchedules(crm, "orders", poller.BackupSchedule{Recurrence: poller.Daily, Retention: 14 * 24 * time.Hour})
	// The newest READY backup is three days old: a daily schedule stopped.
	fs.SetBackups(crm, poller.Backup{Name: "projects/" + crm + "/locations/nam5/backups/b-old", Database: orders.Name, DatabaseUID: orders.UID,
		State: poller.BackupReady, SnapshotTime: now.Add(-72 * time.Hour), ExpireTime: now.Add(11 * 24 * time.Hour), Documents: 5000, Bytes: 5e6})

	slack := slackfake.New(t, "xoxb-targets")
	config := filepath.Join(t.TempDir(), "targets.yaml")
	if err := os.WriteFile(config, []byte(`
store: {project: `+ops+`, database: dsexport}
targets:
  - name: shop
    project: `+shop+`
    export: {prefix: gs://shop-backups/daily, kinds: [Order, User], namespaces: ["(default)"], schedule: "every day 03:00"}
    slackChannel: "#shop"
  - name: analytics
    project: `+crm+`
    database: analytics
    export: {prefix: gs://crm-backups/analytics, schedule: "every 6 hours", consistent: true}
    slackChannel: "#analytics"
  - name: orders
    project: `+crm+`
    database: orders
    backups: {expect: daily, retention: 14d}
    slackChannel: "#orders"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"PORT":                    "0",
		"DSEXPORT_CONFIG":         config,
		"DSEXPORT_POLL_INTERVAL":  "5ms",
		"DSEXPORT_POLL_SCHEDULE":  "fixed",
		"DSEXPORT_MAX_POLLS":      "10",
		"DSEXPORT_SLACK_PROGRESS": "off",
		"DSEXPORT_SWEEP_EVERY":    "1h", // the test sweeps
		// The fakes' operations ran on 2026-11-23: no staleness alarm here.
		"DSEXPORT_STALE_AFTER":        "10000h",
		"DSEXPORT_ADMIN_ENDPOINT":     ds.URL(),
		"DSEXPORT_FIRESTORE_ENDPOINT": fs.URL(),
		"DATASTORE_EMULATOR_HOST":     host,
		"SLACK_TOKEN":                 "xoxb-targets",
		"SLACK_CHANNEL":               "#backups",
		"SLACK_API_URL":               slack.URL(),
	}
	srv := serveInProcess(t, vars, []string{"serve"})
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/cron/export"); code != http.StatusBadRequest || !strings.Contains(body, "target") {
		t.Errorf("GET /cron/export with three targets = %d %s; want 400 naming target", code, body)
	}
	if code, body := get("/cron/export?target=nowhere"); code != http.StatusNotFound {
		t.Errorf("GET /cron/export?target=nowhere = %d %s; want 404", code, body)
	}
	for _, name := range []string{"shop", "analytics"} {
		if code, body := get("/cron/export?target=" + name); code != http.StatusAccepted {
			t.Fatalf("GET /cron/export?target=%s = %d %s; want 202", name, code, body)
		}
	}
	inChannel := func(ch string) []slackfake.Message {
		var out []slackfake.Message
		for _, m := range slack.Messages() {
			if m.Channel == ch {
				out = append(out, m)
			}
		}
		return out
	}
	eventually(t, "both exports' reports", func() bool { return len(inChannel("#shop")) > 0 && len(inChannel("#analytics")) > 0 })
	// Sweeps, as cron's: the missing backup is raised once however often.
	for range 3 {
		if code, body := get("/cron/sweep"); code != http.StatusOK {
			t.Fatalf("GET /cron/sweep = %d %s", code, body)
		}
	}
	time.Sleep(200 * time.Millisecond) // anything sent twice would have come by now
	if err := srv.stop(); err != nil {
		t.Fatalf("serve: %v\n%s", err, srv.stderr.String())
	}

	title := func(m slackfake.Message) string { return m.Attachments[0].Title }
	text := func(m slackfake.Message) string { return m.Attachments[0].Title + "\n" + m.Attachments[0].Text }
	shopMsgs, analyticsMsgs, ordersMsgs := inChannel("#shop"), inChannel("#analytics"), inChannel("#orders")
	if len(shopMsgs) != 1 || !strings.Contains(title(shopMsgs[0]), "succeeded") || !strings.Contains(text(shopMsgs[0]), "gcloud datastore import gs://shop-backups/daily/") {
		t.Errorf("#shop got %d messages; want one success with its Datastore restore command: %+v", len(shopMsgs), shopMsgs)
	}
	if len(analyticsMsgs) != 1 || !strings.Contains(title(analyticsMsgs[0]), "succeeded") ||
		!strings.Contains(text(analyticsMsgs[0]), "gcloud firestore import gs://crm-backups/analytics/") ||
		!strings.Contains(text(analyticsMsgs[0]), "--database=analytics") {
		t.Errorf("#analytics got %d messages; want one success with its Firestore restore command: %+v", len(analyticsMsgs), analyticsMsgs)
	}
	if len(ordersMsgs) != 1 || !strings.Contains(text(ordersMsgs[0]), "No new managed backup for over 2 days") || !strings.Contains(text(ordersMsgs[0]), "b-old") {
		t.Errorf("#orders got %d messages; want one missing-backup alarm naming the newest backup: %+v", len(ordersMsgs), ordersMsgs)
	}
	if others := len(slack.Messages()) - len(shopMsgs) - len(analyticsMsgs) - len(ordersMsgs); others != 0 {
		t.Errorf("%d messages went to other channels: %+v", others, slack.Messages())
	}
	if v := slack.Violations(); len(v) > 0 {
		t.Errorf("messages over Slack's limits: %v", v)
	}

	// The exports went to the right API, the named one at a consistent minute.
	if ex := ds.Exports(); len(ex) != 1 || ex[0].Project != shop {
		t.Errorf("Datastore Admin exports = %+v; want one of %s", ex, shop)
	}
	if ex := fs.Exports(); len(ex) != 1 || ex[0].Project != crm || ex[0].Database != "analytics" || ex[0].SnapshotTime == "" {
		t.Errorf("Firestore Admin exports = %+v; want one of %s/analytics with a snapshot time", ex, crm)
	} else if st, err := time.Parse(time.RFC3339, ex[0].SnapshotTime); err != nil || st.Second() != 0 || st.Nanosecond() != 0 || st.After(time.Now()) {
		t.Errorf("snapshotTime %q is not a whole minute in the past", ex[0].SnapshotTime)
	}

	// dsexport's records: in ops/dsexport, in none of the exported databases.
	ctx := context.Background()
	count := func(project, database string) int {
		t.Helper()
		c, err := datastore.NewClientWithDatabase(ctx, project, database, option.WithEndpoint(host), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		keys, err := c.GetAll(ctx, datastore.NewQuery("DSExportOperation").KeysOnly(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	if n := count(ops, "dsexport"); n != 2 {
		t.Errorf("the store database holds %d operations; want the 2 exports", n)
	}
	for _, db := range [][2]string{{shop, ""}, {crm, "analytics"}, {crm, "orders"}, {ops, ""}} {
		if n := count(db[0], db[1]); n != 0 {
			t.Errorf("%s holds %d of dsexport's operations", poller.Scope(db[0], db[1]), n)
		}
	}

	// The CLI reads each target's records.
	var out, errOut strings.Builder
	if err := run(ctx, []string{"list", "--json", "--target", "analytics"}, env(vars), &out, &errOut); err != nil {
		t.Fatalf("list --target analytics: %v\n%s", err, errOut.String())
	}
	var listed []struct{ Name, Target, Database string }
	if err := json.Unmarshal([]byte(out.String()), &listed); err != nil || len(listed) != 1 || listed[0].Target != "analytics" ||
		listed[0].Database != "analytics" || !poller.IsFirestoreName(listed[0].Name) {
		t.Errorf("list --target analytics = %s (%v); want the one Firestore export", out.String(), err)
	}
	err := run(ctx, []string{"list", "--target", "nowhere"}, env(vars), io.Discard, io.Discard)
	var ue *usageError
	if err == nil || !strings.Contains(err.Error(), "nowhere") || !errors.As(err, &ue) {
		t.Errorf("list --target nowhere = %v; want a usage error naming it", err)
	}
	// A bare id is in one target's database: --target says which.
	id := listed[0].Name[strings.LastIndex(listed[0].Name, "/")+1:]
	if err := run(ctx, []string{"status", id}, env(vars), io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--target") || !errors.As(err, &ue) {
		t.Errorf("status of a bare id with three targets = %v; want a usage error asking for --target", err)
	}
	out.Reset()
	if err := run(ctx, []string{"status", "--target", "analytics", id}, env(vars), &out, &errOut); err != nil || !strings.Contains(out.String(), listed[0].Name) {
		t.Errorf("status --target analytics %s = %v:\n%s; want the export", id, err, out.String())
	}
	if !slices.ContainsFunc(listed, func(r struct{ Name, Target, Database string }) bool {
		return strings.HasPrefix(r.Name, "projects/"+crm+"/databases/analytics/operations/")
	}) {
		t.Errorf("the Firestore export's name is not of its database: %+v", listed)
	}
}
