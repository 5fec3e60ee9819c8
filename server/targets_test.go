package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin"
	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/admin/firestorefake"
	"github.com/dsexport/dsexport/internal/cloudlog"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/server"
	"github.com/dsexport/dsexport/store/memstore"
)

// This file covers the configured targets: the routes that name one, the
// sweep over all of them, their rows on the status page, their own pages
// and /api/targets.

const crmProject = "crm-proj"

// threeTargets are two exported targets in two projects and one that only
// watches a named database's managed backups.
func threeTargets(project string) []poller.Target {
	return []poller.Target{
		{Name: "shop", Project: project, Database: poller.DefaultDatabase, Schedule: "every day 03:00", Every: 24 * time.Hour,
			Export: &poller.ExportRequest{Project: project, OutputURLPrefix: "gs://shop-backups/daily", Kinds: []string{"Order", "User"}, Namespaces: []string{""}}},
		{Name: "crm", Project: crmProject, Database: poller.DefaultDatabase, Schedule: "every day 04:00", Every: 24 * time.Hour,
			Export: &poller.ExportRequest{Project: crmProject, OutputURLPrefix: "gs://crm-backups/nightly", Kinds: []string{"Contact"}}},
		{Name: "analytics", Project: project, Database: "analytics", Backups: &poller.BackupWatch{Recurrence: poller.Daily}},
	}
}

// newTargetRig is the rig with the store in memory and targets configured.
func newTargetRig(t *testing.T, targets func(project string) []poller.Target, configure ...func(*poller.Config)) (*rig, *memstore.Store, *testrig.Rig) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	inline := poller.NewInline(ctx, nil)
	st := memstore.New()
	peers := testrig.NewOn(t, st, "shop-proj", maxPolls, append([]func(*poller.Config){func(c *poller.Config) { c.Dispatcher = inline }}, configure...)...)
	srv := httptest.NewServer(server.New(server.Config{
		Poller: peers.Poller, Logger: peers.Logger, Targets: targets(peers.Project), Records: st,
	}))
	r := &rig{url: srv.URL, inline: inline, admin: peers.Admin, slack: peers.Slack, store: st, project: peers.Project}
	t.Cleanup(func() {
		srv.Close()
		cancel()
		inline.Wait()
	})
	return r, st, peers
}

func TestTargetRoutesRefuse(t *testing.T) {
	r, _, peers := newTargetRig(t, threeTargets)
	for _, tt := range []struct {
		name, method, path, body string
		status                   int
		want                     []string
	}{
		{"cron without a target", "GET", "/cron/export", "", 400, []string{"target: required", `"shop"`, `"crm"`, `"analytics"`}},
		{"cron with an empty target", "GET", "/cron/export?target=", "", 400, []string{"target: required"}},
		{"cron of an unknown target", "GET", "/cron/export?target=nope", "", 404, []string{`target "nope" is not configured`, `"shop"`}},
		{"cron of a watched target", "GET", "/cron/export?target=analytics", "", 400, []string{"target:", `"analytics" only watches managed backups`}},
		{"manual without a target", "POST", "/export", `{"kinds":["Order"]}`, 400, []string{"target: required", `"crm"`}},
		{"manual of an unknown target", "POST", "/export", `{"target":"nope"}`, 404, []string{`target "nope" is not configured`}},
		{"manual of a watched target", "POST", "/export", `{"target":"analytics"}`, 400, []string{"only watches managed backups"}},
		{"manual target not a string", "POST", "/export", `{"target":5}`, 400, []string{`field "target" must be a string`}},
		{"manual into another target's bucket", "POST", "/export", `{"target":"shop","outputUrlPrefix":"gs://crm-backups/x"}`, 400, []string{"outputUrlPrefix", "gs://shop-backups"}},
		{"list of an unknown target", "GET", "/api/exports?target=nope", "", 404, []string{`target "nope" is not configured`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, got := r.do(t, tt.method, tt.path, "application/json", strings.NewReader(tt.body))
			if status != tt.status {
				t.Fatalf("%s %s = %d %s; want %d", tt.method, tt.path, status, got, tt.status)
			}
			msg := errorMessage(t, got)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%s %s error %q lacks %q", tt.method, tt.path, msg, w)
				}
			}
		})
	}
	r.assertUntouched(t)
	if logs := peers.Logs.String(); !strings.Contains(logs, "status=404") || !strings.Contains(logs, "status=400") {
		t.Errorf("refusals are not logged:\n%s", logs)
	}
}

func TestTargetRoutesStart(t *testing.T) {
	r, st, _ := newTargetRig(t, threeTargets)
	ctx := context.Background()

	// The cron of one target starts its export, in its project, and its
	// record carries its name.
	r.admin.Script(adminfake.Successful(10, 100))
	status, body := r.do(t, http.MethodGet, "/cron/export?target=crm", "", nil)
	if status != http.StatusAccepted {
		t.Fatalf("GET /cron/export?target=crm = %d %s; want 202", status, body)
	}
	r.inline.Wait()
	call := r.onlyExport(t)
	if call.Project != crmProject || call.OutputURLPrefix != "gs://crm-backups/nightly" || !slices.Equal(call.EntityFilter.Kinds, []string{"Contact"}) || call.Labels["trigger"] != "cron" {
		t.Errorf("GET /cron/export?target=crm exported %+v; want crm's export, by cron", call)
	}
	crm := decodeRecord(t, body)
	if rec, err := st.Get(ctx, crm.Name); err != nil || rec.Target != "crm" {
		t.Errorf("record of crm's export = %+v, %v; want target crm", rec, err)
	}

	// A manual export of another target: its export is the base, the body's
	// fields override it.
	r.admin.Script(adminfake.Successful(10, 100))
	status, body = r.postJSON(t, "/export", `{"target":"shop","kinds":["Invoice"],"outputUrlPrefix":"gs://shop-backups/manual"}`)
	if status != http.StatusAccepted {
		t.Fatalf("POST /export shop = %d %s; want 202", status, body)
	}
	r.inline.Wait()
	calls := r.admin.Exports()
	if len(calls) != 2 {
		t.Fatalf("Admin API got %d exports; want 2", len(calls))
	}
	shop := calls[1]
	if shop.Project != r.project || shop.OutputURLPrefix != "gs://shop-backups/manual" || !slices.Equal(shop.EntityFilter.Kinds, []string{"Invoice"}) ||
		!slices.Equal(shop.EntityFilter.NamespaceIds, []string{""}) || shop.Labels["trigger"] != "manual" {
		t.Errorf("POST /export shop exported %+v; want shop's project and namespaces, the body's kinds and prefix", shop)
	}
	if rec, err := st.Get(ctx, decodeRecord(t, body).Name); err != nil || rec.Target != "shop" {
		t.Errorf("record of shop's export = %+v, %v; want target shop", rec, err)
	}

	// The list API of one target lists its records only.
	for _, tt := range []struct{ target, want string }{{"crm", crm.Name}, {"shop", decodeRecord(t, body).Name}} {
		status, b := r.do(t, http.MethodGet, "/api/exports?target="+tt.target, "", nil)
		var l struct{ Exports []record }
		if err := json.Unmarshal(b, &l); status != http.StatusOK || err != nil || len(l.Exports) != 1 || l.Exports[0].Name != tt.want {
			t.Errorf("GET /api/exports?target=%s = %d %s; want only %s", tt.target, status, b, tt.want)
		}
	}
	if status, b := r.do(t, http.MethodGet, "/api/exports", "", nil); status != http.StatusOK || strings.Count(string(b), `"name"`) != 2 {
		t.Errorf("GET /api/exports = %d %s; want both", status, b)
	}
	// The export page finds crm's export in crm's project.
	if status, b := r.do(t, http.MethodGet, "/exports/"+crm.Name[strings.LastIndexByte(crm.Name, '/')+1:]+"?target=crm", "", nil); status != http.StatusOK {
		t.Errorf("crm's export page = %d %.300s; want 200", status, b)
	}
}

func TestTargetRoutesOneTarget(t *testing.T) {
	one := func(project string) []poller.Target { return threeTargets(project)[1:2] }
	r, _, _ := newTargetRig(t, one)
	r.admin.Script(adminfake.Successful(10, 100))
	status, body := r.do(t, http.MethodGet, "/cron/export", "", nil)
	if status != http.StatusAccepted {
		t.Fatalf("GET /cron/export with one target = %d %s; want 202", status, body)
	}
	r.admin.Script(adminfake.Successful(10, 100))
	if status, body = r.postJSON(t, "/export", `{"kinds":["Lead"]}`); status != http.StatusAccepted {
		t.Fatalf("POST /export with one target = %d %s; want 202", status, body)
	}
	r.inline.Wait()
	calls := r.admin.Exports()
	if len(calls) != 2 || calls[0].Project != crmProject || calls[1].Project != crmProject || !slices.Equal(calls[1].EntityFilter.Kinds, []string{"Lead"}) {
		t.Errorf("exports = %+v; want two of crm, the second of Lead", calls)
	}
	// Polls of the target's project are followed; another's are refused.
	status, body = r.postJSON(t, "/tasks/poll", `{"name":"projects/`+crmProject+`/operations/nothere"}`)
	if status != http.StatusNotFound {
		t.Errorf("poll of an unknown operation of crm = %d %s; want 404", status, body)
	}
	status, body = r.postJSON(t, "/tasks/poll", `{"name":"projects/elsewhere/operations/x"}`)
	if status != http.StatusBadRequest || !strings.Contains(errorMessage(t, body), "not an operation of a configured database: elsewhere is not one of "+crmProject) {
		t.Errorf("poll of another project = %d %s; want 400 naming %s", status, body, crmProject)
	}
}

// TestPollScopes checks that the poll task follows operations of the
// configured databases only: a configured named database's is read through
// the Firestore Admin API; another database of a configured project, and
// the (default) database of a project whose only target is a named
// database, are refused before any Admin API call.
func TestPollScopes(t *testing.T) {
	fs := firestorefake.New(t)
	fsClient, err := admin.NewFirestore(context.Background(), fs.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	targets := func(project string) []poller.Target {
		return []poller.Target{
			{Name: "shop", Project: project, Database: poller.DefaultDatabase,
				Export: &poller.ExportRequest{Project: project, OutputURLPrefix: "gs://shop-backups/daily"}},
			{Name: "analytics", Project: project, Database: "analytics",
				Export: &poller.ExportRequest{Project: project, Database: "analytics", OutputURLPrefix: "gs://shop-backups/analytics"}},
			{Name: "crm", Project: crmProject, Database: "crm-db",
				Export: &poller.ExportRequest{Project: crmProject, Database: "crm-db", OutputURLPrefix: "gs://crm-backups/nightly"}},
		}
	}
	r, _, _ := newTargetRig(t, targets, func(c *poller.Config) { c.Admin = admin.Router{Datastore: c.Admin, Firestore: fsClient} })

	// The configured named database: polled through the Firestore Admin API.
	fs.AddDatabase(r.project, "analytics")
	polled := fs.AddOperation(r.project, "analytics", firestorefake.Successful(1000, 10000))
	status, body := r.postJSON(t, "/tasks/poll", `{"name":"`+polled+`"}`)
	if rec := decodeRecord(t, body); status != http.StatusOK || rec.Name != polled || rec.Outcome != "success" || fs.Gets(polled) != 1 {
		t.Errorf("poll of %s = %d %s, %d reads; want 200, a success, one read", polled, status, body, fs.Gets(polled))
	}

	// A Firestore Admin API name of (default) is the (default) target's:
	// read, and not found.
	dflt := "projects/" + r.project + "/databases/(default)/operations/nothere"
	reads := fs.Calls(firestorefake.GetOperation)
	if status, body := r.postJSON(t, "/tasks/poll", `{"name":"`+dflt+`"}`); status != http.StatusNotFound || fs.Calls(firestorefake.GetOperation) != reads+1 {
		t.Errorf("poll of %s = %d %s; want 404 from the Firestore Admin API", dflt, status, body)
	}

	fs.AddDatabase(r.project, "unconfigured")
	refused := []struct{ name, scope string }{
		{fs.AddOperation(r.project, "unconfigured"), r.project + "/databases/unconfigured"},
		{r.admin.AddOperation(crmProject), crmProject},
		{"projects/" + crmProject + "/databases/(default)/operations/x", crmProject},
	}
	before := len(fs.Requests())
	for _, tt := range refused {
		status, body := r.postJSON(t, "/tasks/poll", `{"name":"`+tt.name+`"}`)
		want := "not an operation of a configured database: " + tt.scope + " is not one of " +
			r.project + ", " + r.project + "/databases/analytics, " + crmProject + "/databases/crm-db"
		if status != http.StatusBadRequest {
			t.Errorf("poll of %s = %d %s; want 400", tt.name, status, body)
		} else if msg := errorMessage(t, body); !strings.Contains(msg, want) {
			t.Errorf("poll of %s refused with %q; want it saying %q", tt.name, msg, want)
		}
	}
	if got := fs.Requests(); len(got) != before {
		t.Errorf("Firestore Admin API got %+v after the refusals; want nothing more", got[before:])
	}
	if n := r.admin.Gets(refused[1].name); n != 0 {
		t.Errorf("Datastore Admin API read %s %d times; want none", refused[1].name, n)
	}
}

// TestSweepAllTargets checks that the sweep watches every exported target:
// 27 hours without a success raise one alarm per exported target's
// database, and none for the target that only watches backups.
func TestSweepAllTargets(t *testing.T) {
	r, _, peers := newTargetRig(t, threeTargets, func(c *poller.Config) { c.StaleAfter = 26 * time.Hour })
	sweep := func() poller.SweepResult {
		t.Helper()
		status, body := r.do(t, http.MethodGet, "/cron/sweep", "", nil)
		var res poller.SweepResult
		if err := json.Unmarshal(body, &res); status != http.StatusOK || err != nil {
			t.Fatalf("GET /cron/sweep = %d %s; want 200", status, body)
		}
		return res
	}
	if sweep().Alarm {
		t.Fatal("alarm at the first sweep")
	}
	peers.Clock.Advance(27 * time.Hour)
	if !sweep().Alarm {
		t.Fatal("no alarm after 27h without a success")
	}
	msgs := r.slack.Messages()
	var titles []string
	for _, m := range msgs {
		titles = append(titles, m.Attachments[0].Title+" "+m.Attachments[0].Text)
	}
	all := strings.Join(titles, "\n")
	if len(msgs) != 2 || !strings.Contains(all, r.project) || !strings.Contains(all, crmProject) || strings.Contains(all, "analytics") {
		t.Errorf("alarms = %q; want one for %s and one for %s, none for analytics", titles, r.project, crmProject)
	}
}

// newTargetPageRig is the page rig on memstore with targets and backups.
func newTargetPageRig(t *testing.T, targets []poller.Target) *pageRig {
	t.Helper()
	st := memstore.New()
	srv := httptest.NewServer(server.New(server.Config{
		Logger:  slog.New(slog.DiscardHandler),
		Targets: targets, Backups: st, Records: st, Location: tokyo,
	}))
	t.Cleanup(srv.Close)
	return &pageRig{url: srv.URL, store: st, project: "shop-proj", now: time.Now().Truncate(time.Second)}
}

// of is e as an export of target.
func of(target string, e export) export {
	e.op.Target = target
	for i := range e.progress {
		e.progress[i].Target = target
	}
	return e
}

func pageTargets() []poller.Target {
	daily := func(name string) poller.Target {
		return poller.Target{Name: name, Project: "shop-proj", Schedule: "every day 03:00", Every: 24 * time.Hour,
			Export: &poller.ExportRequest{Project: "shop-proj", OutputURLPrefix: "gs://example-backups/daily"}}
	}
	both := daily("both")
	both.Every = 7 * 24 * time.Hour
	both.Backups = &poller.BackupWatch{Recurrence: poller.Daily}
	return []poller.Target{
		daily("fresh"), daily("slow"), daily("stale"), daily("new"), daily("busy"),
		{Name: "vault", Project: "shop-proj", Database: "vault-db", Backups: &poller.BackupWatch{Recurrence: poller.Daily, Retention: 14 * 7 * 24 * time.Hour}},
		{Name: "empty", Project: "shop-proj", Database: "empty-db", Backups: &poller.BackupWatch{Recurrence: poller.Weekly}},
		both,
	}
}

// fillTargets records each page target's history: fresh succeeded 2h ago,
// slow 30h ago, stale 50h ago (a day's export is expected), new never, busy
// runs its first; vault has a READY backup 10h old, empty none; both's
// export is 40h old but its backup 3h.
func fillTargets(t *testing.T, r *pageRig) {
	t.Helper()
	r.add(t, of("fresh", r.success("fresh-old", 26*time.Hour, 900, 9000)))
	r.add(t, of("fresh", r.success("fresh-1", 2*time.Hour, 1000, 10000)))
	r.add(t, of("slow", r.success("slow-1", 30*time.Hour, 1000, 10000)))
	r.add(t, of("stale", r.success("stale-1", 50*time.Hour, 1000, 10000)))
	r.add(t, of("both", r.success("both-1", 40*time.Hour, 1000, 10000)))
	start := r.now.Add(-5 * time.Minute)
	r.add(t, of("busy", export{id: "busy-1", created: start, op: poller.Operation{State: poller.StateProcessing, Trigger: poller.TriggerCron, StartTime: start,
		EntitiesCompleted: 10, EntitiesEstimated: 100}}))
	// A success of no target: the environment's, which none of these is.
	r.add(t, r.success("untargeted", time.Hour, 1, 1))
	ready := func(id string, ago time.Duration) poller.Backup {
		return poller.Backup{Name: "projects/shop-proj/locations/nam5/backups/" + id, State: poller.BackupReady,
			SnapshotTime: r.now.Add(-ago), ExpireTime: r.now.Add(14*24*time.Hour - ago), Documents: 1234567, Bytes: 98765432}
	}
	creating := ready("vault-creating", time.Hour)
	creating.State, creating.Documents, creating.Bytes = poller.BackupCreating, 0, 0
	gone := ready("vault-gone", 34*time.Hour)
	gone.State = poller.BackupNotAvailable
	record := func(target string, bs ...poller.Backup) {
		for _, b := range bs {
			if err := r.store.RecordBackup(context.Background(), target, b, r.now); err != nil {
				t.Fatal(err)
			}
		}
	}
	record("vault", creating, ready("vault-1", 10*time.Hour), gone)
	record("both", ready("both-b", 3*time.Hour))
	// A backup of a target that does not watch them is not looked at.
	record("fresh", ready("fresh-b", time.Minute))
}

func TestStatusPageTargets(t *testing.T) {
	r := newTargetPageRig(t, pageTargets())
	fillTargets(t, r)
	body := r.page(t, "/")
	got := rows(t, body, "targets")
	want := []struct {
		name, badge string
		has         []string
	}{
		{"fresh", "ok ok", []string{"export", `href="/exports/fresh-1?target=fresh"`, "2 hours ago", "within 1 day", "Next due"}},
		{"slow", "warn late", []string{"30 hours ago"}},
		{"stale", "bad overdue", []string{"2 days ago"}},
		{"new", "bad never", nil},
		{"busy", "run running", []string{`<a href="/exports/busy-1?target=busy">an export is under way</a>`}},
		{"vault", "ok ok", []string{"managed backup", `title="projects/shop-proj/locations/nam5/backups/vault-1"`, "10 hours ago", "within 2 days", "vault-db"}},
		{"empty", "bad never", []string{"within 8 days"}},
		{"both", "ok ok", []string{"managed backup", "both-b", "3 hours ago", "within 2 days"}},
	}
	if len(got) != len(want) {
		t.Fatalf("status page has %d target rows; want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i, w := range want {
		row := got[i]
		if !strings.Contains(row, `<a href="/targets/`+w.name+`">`+w.name+`</a>`) {
			t.Errorf("target row %d does not link target %s:\n%s", i, w.name, row)
		}
		if b := badges(row); len(b) != 1 || b[0] != w.badge {
			t.Errorf("target %s badges = %q; want %q", w.name, b, w.badge)
		}
		for _, s := range w.has {
			if s == "Next due" {
				due := r.now.Add(-2 * time.Hour).Add(24 * time.Hour).In(tokyo).Format("2006-01-02 15:04 MST")
				s = `<td data-label="Next due"><time datetime="` + r.now.Add(22*time.Hour).UTC().Format(time.RFC3339) + `">` + due + `</time></td>`
			}
			if !strings.Contains(row, s) {
				t.Errorf("target %s row lacks %q:\n%s", w.name, s, row)
			}
		}
	}
	// Only the watching targets' backups are read: fresh's row shows its
	// export of 2 hours ago, not the backup recorded a minute ago.
	// Today's content follows: the recent list of every target's exports.
	if got := rows(t, body, "exports"); len(got) != 7 {
		t.Errorf("recent exports has %d rows; want all 7", len(got))
	}
}

func TestAPITargets(t *testing.T) {
	r := newTargetPageRig(t, pageTargets())
	fillTargets(t, r)
	status, body, hdr := r.get(t, "/api/targets")
	if status != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/targets = %d %s %s", status, hdr.Get("Content-Type"), body)
	}
	var got struct {
		Targets []struct {
			Name, Project, Database string
			LastGood                *struct{ Kind, Name, At string }
			Age                     *int64
			ExpectedEvery           int64
			NextDue                 *string
			Badge                   string
			Running                 string
		}
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("GET /api/targets = %s: %v", body, err)
	}
	var badgesOf []string
	for _, tg := range got.Targets {
		badgesOf = append(badgesOf, tg.Name+" "+tg.Badge)
	}
	if want := []string{"fresh ok", "slow late", "stale overdue", "new never", "busy running", "vault ok", "empty never", "both ok"}; !slices.Equal(badgesOf, want) {
		t.Fatalf("targets = %q; want %q", badgesOf, want)
	}
	fresh := got.Targets[0]
	end := r.now.Add(-2 * time.Hour)
	if fresh.LastGood == nil || fresh.LastGood.Kind != "export" || fresh.LastGood.Name != r.name("fresh-1") || fresh.LastGood.At != end.UTC().Format(time.RFC3339Nano) {
		t.Errorf("fresh lastGood = %+v; want the export fresh-1 ended at %s", fresh.LastGood, end.UTC())
	}
	if fresh.Age == nil || *fresh.Age < 7200 || *fresh.Age > 7200+60 || fresh.ExpectedEvery != 86400 || fresh.NextDue == nil || *fresh.NextDue != end.Add(24*time.Hour).UTC().Format(time.RFC3339Nano) {
		t.Errorf("fresh = %+v; want age 7200s, expected 86400s, due a day after its end", fresh)
	}
	if fresh.Project != "shop-proj" || fresh.Database != "(default)" {
		t.Errorf("fresh is in %s %s; want shop-proj (default)", fresh.Project, fresh.Database)
	}
	vault := got.Targets[5]
	if vault.LastGood == nil || vault.LastGood.Kind != "backup" || !strings.HasSuffix(vault.LastGood.Name, "/backups/vault-1") || vault.ExpectedEvery != 48*3600 || vault.Database != "vault-db" {
		t.Errorf("vault = %+v; want the READY backup vault-1, expected within 48h", vault)
	}
	if n := got.Targets[3]; n.LastGood != nil || n.Age != nil || n.NextDue != nil {
		t.Errorf("new = %+v; want no lastGood, age or nextDue", n)
	}
	if b := got.Targets[4]; b.Running != r.name("busy-1") {
		t.Errorf("busy = %+v; want running busy-1", b)
	}
	if both := got.Targets[7]; both.ExpectedEvery != 48*3600 || both.LastGood == nil || both.LastGood.Kind != "backup" {
		t.Errorf("both = %+v; want the tighter expectation, 48h, and its newer backup", both)
	}
}

func TestTargetPage(t *testing.T) {
	r := newTargetPageRig(t, pageTargets())
	fillTargets(t, r)

	body := r.page(t, "/targets/fresh")
	exports := rows(t, body, "exports")
	if len(exports) != 2 || !strings.Contains(exports[0], `href="/exports/fresh-1?target=fresh"`) || !strings.Contains(exports[1], "fresh-old") {
		t.Errorf("fresh's exports = %q; want fresh-1 and fresh-old only", exports)
	}
	for _, want := range []string{"<h1>Target fresh", `<span class="badge ok">ok</span>`, "gs://example-backups/daily", "every day 03:00",
		`<svg class="chart"`, `aria-label="Entities exported.`} {
		if !strings.Contains(body, want) {
			t.Errorf("fresh's page lacks %q", want)
		}
	}
	if strings.Contains(body, "untargeted") || strings.Contains(body, "slow-1") {
		t.Errorf("fresh's page shows another target's exports")
	}
	if strings.Contains(body, `id="backups"`) {
		t.Errorf("fresh's page lists managed backups; it watches none")
	}

	body = r.page(t, "/targets/vault")
	backups := rows(t, body, "backups")
	if len(backups) != 3 {
		t.Fatalf("vault's backups = %q; want 3", backups)
	}
	for i, want := range [][]string{
		{"creating", "vault-creating", "—"},
		{`<span class="badge ok">ready</span>`, "vault-1", "1,234,567", "94.2 MiB", r.now.Add(-10 * time.Hour).In(tokyo).Format("2006-01-02 15:04 MST"), r.now.Add(14*24*time.Hour - 10*time.Hour).In(tokyo).Format("2006-01-02 15:04 MST")},
		{"not available", "vault-gone"},
	} {
		for _, w := range want {
			if !strings.Contains(backups[i], w) {
				t.Errorf("vault's backup %d lacks %q:\n%s", i, w, backups[i])
			}
		}
	}
	if strings.Contains(body, `id="exports"`) || !strings.Contains(body, "only watched") {
		t.Errorf("vault's page lists exports or does not say it is only watched")
	}

	status, body, _ := r.get(t, "/targets/nope")
	if status != http.StatusNotFound || !strings.Contains(body, `target &#34;nope&#34; is not configured`) || !strings.Contains(body, "<h1>404 Not Found</h1>") {
		t.Errorf("GET /targets/nope = %d %s; want the 404 page naming it", status, body)
	}
}

// TestHostileTargetNames sends names a caller could make up, and
// configures one a careless file could hold: every answer and page quotes
// them escaped, and a long one bounded, in one bounded log line.
func TestHostileTargetNames(t *testing.T) {
	script := `<script>alert(1)</script>`
	targets := []poller.Target{
		{Name: script, Project: "shop-proj", Every: time.Hour, Export: &poller.ExportRequest{Project: "shop-proj", OutputURLPrefix: "gs://example-backups/daily"}},
		{Name: "plain", Project: "shop-proj", Export: &poller.ExportRequest{Project: "shop-proj", OutputURLPrefix: "gs://example-backups/daily"}},
	}
	var logs testrig.SyncBuffer
	st := memstore.New()
	srv := httptest.NewServer(server.New(server.Config{Logger: cloudlog.New(&logs, true, "shop-proj"), Targets: targets, Records: st}))
	defer srv.Close()
	r := &pageRig{url: srv.URL, store: st, project: "shop-proj", now: time.Now().Truncate(time.Second)}
	r.add(t, of(script, r.success("s-1", time.Hour, 10, 100)))
	escaped := "&lt;script&gt;alert(1)&lt;/script&gt;"

	body := r.page(t, "/")
	row := rows(t, body, "targets")[0]
	if strings.Contains(body, script) || !strings.Contains(row, `<a href="/targets/%3Cscript%3Ealert%281%29%3C%2Fscript%3E">`+escaped+`</a>`) {
		t.Errorf("status page holds the target name unescaped, or does not link it escaped:\n%s", row)
	}
	if !strings.Contains(row, `href="/exports/s-1?target=%3Cscript%3Ealert%281%29%3C%2Fscript%3E"`) {
		t.Errorf("status page does not link its export with the target escaped:\n%s", row)
	}
	page := r.page(t, "/targets/"+url.PathEscape(script))
	if strings.Contains(page, script) || !strings.Contains(page, "<h1>Target "+escaped) || !strings.Contains(page, "s-1") {
		t.Errorf("the target's page holds its name unescaped or lacks its export:\n%s", page)
	}
	// A page of a name that is not configured quotes it escaped.
	status, body, _ := r.get(t, "/targets/"+url.PathEscape(script+"x"))
	if status != http.StatusNotFound || strings.Contains(body, script) || !strings.Contains(body, escaped) {
		t.Errorf("GET /targets/<script>x = %d %s; want 404 quoting it escaped", status, body)
	}

	long := script + strings.Repeat("x", 300<<10)
	for _, path := range []string{"/cron/export?target=" + url.QueryEscape(long), "/api/exports?target=" + url.QueryEscape(long),
		"/targets/" + url.PathEscape(long), "/exports/s-1?target=" + url.QueryEscape(long), "/api/exports/s-1?target=" + url.QueryEscape(long)} {
		before := len(logs.String())
		status, body, _ := r.get(t, path)
		if status != http.StatusNotFound || len(body) > 8<<10 || strings.Contains(body, script) {
			t.Errorf("GET %.40s… = %d with %d bytes: %.300s; want 404, bounded and escaped", path, status, len(body), body)
		}
		line := strings.TrimSuffix(logs.String()[before:], "\n")
		if strings.Count(line, "\n") != 0 || len(line) > 16<<10 || !strings.Contains(line, "request failed") {
			t.Errorf("GET %.40s… logged %d bytes over %d lines; want one bounded line", path, len(line), strings.Count(line, "\n")+1)
		}
	}
	// Nothing is started for a name that is not configured.
	if recs, _ := st.List(context.Background(), 0); len(recs) != 1 {
		t.Errorf("store holds %d records; want only the one recorded", len(recs))
	}
}
