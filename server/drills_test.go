package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/server"
	"github.com/dsexport/dsexport/store/memstore"
)

// This file covers the targets' content verifications and restore drills
// on the status page, the targets' pages and /api/targets.

const week = 7 * 24 * time.Hour

// checkTargets are targets whose verifications and drills differ: shop's
// latest check raised an alarm after a good one and its drill passed;
// crm's drill failed at import; lagging has waited 8 days for its first
// drill; waiting verified an hour ago and has no drill yet; plain's only
// check was cut by time and it has no drill; vault only watches backups.
func checkTargets() []poller.Target {
	daily := func(name string, drill bool) poller.Target {
		t := poller.Target{Name: name, Project: "shop-proj", Schedule: "every day 03:00", Every: 24 * time.Hour,
			Export: &poller.ExportRequest{Project: "shop-proj", OutputURLPrefix: "gs://example-backups/" + name}}
		if drill {
			t.Drill = &poller.DrillSpec{Every: week}
		}
		return t
	}
	return []poller.Target{
		daily("shop", true), daily("crm", true), daily("lagging", true), daily("waiting", true), daily("plain", false),
		{Name: "vault", Project: "shop-proj", Database: "vault-db", Backups: &poller.BackupWatch{Recurrence: poller.Daily}},
	}
}

// newCheckRigs are two servers on one memstore: one shows the
// verifications and drills, the other has neither port.
func newCheckRigs(t *testing.T) (with, without *pageRig, st *memstore.Store) {
	t.Helper()
	st = memstore.New()
	now := time.Now().Truncate(time.Second)
	serve := func(cfg server.Config) *pageRig {
		cfg.Logger, cfg.Targets, cfg.Records, cfg.Backups, cfg.Location = slog.New(slog.DiscardHandler), checkTargets(), st, st, tokyo
		srv := httptest.NewServer(server.New(cfg))
		t.Cleanup(srv.Close)
		return &pageRig{url: srv.URL, store: st, project: "shop-proj", now: now}
	}
	return serve(server.Config{Verifications: st, Drills: st}), serve(server.Config{}), st
}

const (
	goodEntities = 1229517
	goodBytes    = 12455405158 // 11.6 GiB
	importError  = "import into shop-proj/databases/dsx-drill-x: PERMISSION_DENIED: the service agent cannot read gs://example-backups/crm"
)

// fillChecks records the checks' verifications and drills, and shop's
// two exports.
func fillChecks(t *testing.T, r *pageRig, st *memstore.Store) {
	t.Helper()
	ctx := context.Background()
	r.add(t, of("shop", r.success("shop-1", 26*time.Hour, goodEntities, goodBytes)))
	r.add(t, of("shop", r.success("shop-2", 2*time.Hour, 0, 0)))
	content := poller.Content{Files: 40, Bytes: goodBytes, Entities: goodEntities,
		Kinds: []poller.KindCount{{Kind: "Order", Entities: 1000000}, {Kind: "User", Entities: goodEntities - 1000000}}}
	verify := func(target, id string, ago time.Duration, change func(*poller.Verification)) {
		t.Helper()
		v := poller.Verification{Operation: r.name(id), Target: target, Project: "shop-proj", Database: poller.DefaultDatabase,
			OutputURL: "gs://example-backups/" + target + "/" + id + "/" + id + ".overall_export_metadata",
			At:        r.now.Add(-ago), ExportTime: r.now.Add(-ago - time.Minute), Content: content}
		if change != nil {
			change(&v)
		}
		if err := st.RecordVerification(ctx, v, v.At); err != nil {
			t.Fatal(err)
		}
	}
	verify("shop", "shop-1", 26*time.Hour, nil)
	verify("shop", "shop-2", 2*time.Hour, func(v *poller.Verification) {
		v.Content = poller.Content{Files: 1}
		v.Findings = []poller.ContentFinding{{Rule: poller.ContentEmpty, Text: "the export holds no entity"}}
	})
	verify("crm", "crm-1", 5*time.Hour, nil)
	verify("lagging", "lagging-1", 8*24*time.Hour, nil)
	verify("waiting", "waiting-1", time.Hour, nil)
	verify("plain", "plain-1", 3*time.Hour, func(v *poller.Verification) {
		v.Error, v.TimedOut = "reading the output files took longer than 10m", true
	})

	drill := func(d poller.Drill) {
		t.Helper()
		d.ID, d.Project, d.Database, d.Trigger, d.Step = poller.DrillID(d.Target, d.Began), "shop-proj", poller.DefaultDatabase, poller.TriggerCron, poller.DrillDone
		if _, ok, err := st.BeginDrill(ctx, d, time.Time{}); err != nil || !ok {
			t.Fatalf("BeginDrill(%s) = %v, %v", d.ID, ok, err)
		}
	}
	// shop's drill began a day ago and restored shop-1 (exported 3 hours
	// before) in 41 minutes.
	began := r.now.Add(-24 * time.Hour)
	drill(poller.Drill{Target: "shop", Began: began, Export: r.name("shop-1"), ExportTime: began.Add(-3 * time.Hour),
		CreateStart: began.Add(time.Minute), ImportStart: began.Add(5 * time.Minute), ImportEnd: began.Add(42 * time.Minute),
		Counted: content.Kinds, Expected: content.Kinds, Outcome: poller.DrillPassed, Ended: began.Add(45 * time.Minute), Deleted: true})
	began = r.now.Add(-3 * time.Hour)
	drill(poller.Drill{Target: "crm", Began: began, Export: r.name("crm-1"), ExportTime: began.Add(-2 * time.Hour),
		CreateStart: began.Add(time.Minute), ImportStart: began.Add(5 * time.Minute),
		Outcome: poller.DrillFailed, FailedStep: poller.DrillImport, Error: importError, Ended: began.Add(6 * time.Minute), Deleted: true})
}

func TestStatusPageChecks(t *testing.T) {
	r, _, st := newCheckRigs(t)
	fillChecks(t, r, st)
	body := r.page(t, "/")
	for _, h := range []string{`<th scope="col">Last verified export</th>`, `<th scope="col">Last drill</th>`} {
		if !strings.Contains(body, h) {
			t.Errorf("status page lacks the column %s", h)
		}
	}
	got := rows(t, body, "targets")
	shopAt := r.now.Add(-26 * time.Hour).In(tokyo).Format("2006-01-02 15:04 MST")
	shopDrillAt := r.now.Add(-24 * time.Hour).Add(45 * time.Minute).In(tokyo).Format("2006-01-02 15:04 MST")
	want := []struct {
		name string
		// badges are the row's: its verification's, its drill's, then its
		// freshness and alarms.
		badges []string
		has    []string
	}{
		{"shop", []string{"bad NOT verified", "ok drill passed", "ok ok", "bad NOT verified"}, []string{
			`<td data-label="Last verified export"><a href="/exports/shop-1?target=shop" title="` + r.name("shop-1") + `">shop-1</a> <time datetime="` +
				r.now.Add(-26*time.Hour).UTC().Format(time.RFC3339) + `">` + shopAt + `</time>`,
			"verified: 1,229,517 entities in 2 kinds, 11.6 GiB in 40 files",
			`<span class="warning">NOT verified: 0 entities in 0 kinds, 0 B in 1 file</span>`,
			`href="/exports/shop-2?target=shop"`,
			"Restore verified in 41m: 1,229,517 entities in 2 kinds",
			`>` + shopDrillAt + `</time> · RTO 41m · RPO 3h`,
			"every 7 days",
		}},
		{"crm", []string{"ok verified", "bad drill failed at import", "bad never", "bad drill failed at import"}, []string{
			`href="/exports/crm-1?target=crm"`, "Restore drill failed at step import", "RTO — · RPO 2h",
			`<span class="warning">` + importError + `</span>`,
		}},
		{"lagging", []string{"ok verified", "bad drill overdue", "bad never", "bad drill overdue"}, []string{"lagging-1", "every 7 days"}},
		{"waiting", []string{"ok verified", "run no drill yet", "bad never"}, []string{"waiting-1"}},
		{"plain", []string{"warn not verified", "bad never"}, []string{
			"no verified export yet", `<span class="muted">not verified: reading the output files took longer than 10m</span>`,
			`<td data-label="Last drill"><span class="muted">no drill configured</span></td>`,
		}},
		{"vault", []string{"bad never"}, []string{`<td data-label="Last verified export">—</td>`, "no drill configured"}},
	}
	if len(got) != len(want) {
		t.Fatalf("status page has %d target rows; want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i, w := range want {
		row := got[i]
		if !strings.Contains(row, `<a href="/targets/`+w.name+`">`) {
			t.Fatalf("target row %d is not %s:\n%s", i, w.name, row)
		}
		if b := badges(row); !slices.Equal(b, w.badges) {
			t.Errorf("target %s badges = %q; want %q", w.name, b, w.badges)
		}
		for _, s := range w.has {
			if !strings.Contains(row, s) {
				t.Errorf("target %s row lacks %q:\n%s", w.name, s, row)
			}
		}
	}

	// A target's page shows the same row, its alarms beside its badge in
	// the heading, and its drill's period among its settings.
	page := r.page(t, "/targets/crm")
	if !strings.Contains(page, `<h1>Target crm <span class="badge bad">never</span> <span class="badge bad">drill failed at import</span></h1>`) {
		t.Errorf("crm's page heading does not show its failed drill:\n%s", page)
	}
	if row := rows(t, page, "targets"); len(row) != 1 || !strings.Contains(row[0], "Restore drill failed at step import") || !strings.Contains(row[0], `href="/exports/crm-1?target=crm"`) {
		t.Errorf("crm's page row = %q; want its drill and its verified export", row)
	}
	if !strings.Contains(page, "<dt>Restore drill</dt><dd>every 7 days") {
		t.Errorf("crm's page does not list its drill's period")
	}
	page = r.page(t, "/targets/shop")
	if !strings.Contains(page, `<h1>Target shop <span class="badge ok">ok</span> <span class="badge bad">NOT verified</span></h1>`) {
		t.Errorf("shop's page heading does not show its verification's alarm")
	}
}

func TestStatusPageChecksWithoutStores(t *testing.T) {
	r, without, st := newCheckRigs(t)
	fillChecks(t, r, st)
	got := rows(t, without.page(t, "/"), "targets")
	if len(got) != 6 {
		t.Fatalf("status page without the checks' stores has %d target rows; want 6", len(got))
	}
	for i, name := range []string{"shop", "crm", "lagging", "waiting", "plain"} {
		drill := `<td data-label="Last drill">—</td>`
		if name == "plain" {
			drill = `<td data-label="Last drill"><span class="muted">no drill configured</span></td>`
		}
		for _, s := range []string{`<td data-label="Last verified export">—</td>`, drill} {
			if !strings.Contains(got[i], s) {
				t.Errorf("target %s row without the stores lacks %q:\n%s", name, s, got[i])
			}
		}
		if b := badges(got[i]); len(b) != 1 {
			t.Errorf("target %s row without the stores has badges %q; want its freshness only", name, b)
		}
	}
	without.page(t, "/targets/shop")

	status, body, _ := without.get(t, "/api/targets")
	var raw struct{ Targets []map[string]json.RawMessage }
	if err := json.Unmarshal([]byte(body), &raw); status != http.StatusOK || err != nil || len(raw.Targets) != 6 {
		t.Fatalf("GET /api/targets without the stores = %d %s, %v", status, body, err)
	}
	for _, tg := range raw.Targets {
		for _, k := range []string{"verification", "lastVerified", "drill", "alarms"} {
			if v, ok := tg[k]; ok {
				t.Errorf("target %s has %s %s without the stores; want it left out", tg["name"], k, v)
			}
		}
	}
	if e := string(raw.Targets[0]["drillEvery"]); e != "604800" {
		t.Errorf("shop's drillEvery without the stores = %s; want 604800, from its configuration", e)
	}
}

// apiCheck is a verification in /api/targets.
type apiCheck struct {
	Operation, At, Text string
	Verified, Alarm     bool
	Entities, Bytes     int64
	Kinds, Files        int
}

type apiDrill struct {
	ID, Outcome, Step, FailedStep, Began, Error, Badge string
	Ended                                              *string
	RTOSeconds, RPOSeconds, Entities                   int64
}

func TestAPITargetsChecks(t *testing.T) {
	r, _, st := newCheckRigs(t)
	fillChecks(t, r, st)
	status, body, _ := r.get(t, "/api/targets")
	var got struct {
		Targets []struct {
			Name         string
			Verification *apiCheck
			LastVerified *apiCheck
			Drill        *apiDrill
			DrillEvery   int64
			Alarms       []string
		}
	}
	if err := json.Unmarshal([]byte(body), &got); status != http.StatusOK || err != nil || len(got.Targets) != 6 {
		t.Fatalf("GET /api/targets = %d %s, %v", status, body, err)
	}
	at := func(ago time.Duration) string { return r.now.Add(-ago).UTC().Format(time.RFC3339Nano) }

	shop := got.Targets[0]
	if v := shop.Verification; v == nil || v.Operation != r.name("shop-2") || v.Verified || !v.Alarm || v.Entities != 0 || v.Files != 1 ||
		v.Text != "NOT verified: 0 entities in 0 kinds, 0 B in 1 file" || v.At != at(2*time.Hour) {
		t.Errorf("shop's verification = %+v; want shop-2's alarm", v)
	}
	if v := shop.LastVerified; v == nil || v.Operation != r.name("shop-1") || !v.Verified || v.Alarm || v.Entities != goodEntities || v.Kinds != 2 ||
		v.Files != 40 || v.Bytes != goodBytes || v.At != at(26*time.Hour) || !strings.HasPrefix(v.Text, "verified: 1,229,517 entities") {
		t.Errorf("shop's lastVerified = %+v; want shop-1, verified", v)
	}
	began := r.now.Add(-24 * time.Hour)
	if d := shop.Drill; d == nil || d.ID != poller.DrillID("shop", began) || d.Outcome != "passed" || d.Step != "done" || d.FailedStep != "" ||
		d.Began != at(24*time.Hour) || d.Ended == nil || *d.Ended != began.Add(45*time.Minute).UTC().Format(time.RFC3339Nano) ||
		d.RTOSeconds != 41*60 || d.RPOSeconds != 3*3600 || d.Entities != goodEntities || d.Badge != "drill passed" || d.Error != "" {
		t.Errorf("shop's drill = %+v; want passed in 41m, RPO 3h", d)
	}
	if shop.DrillEvery != 604800 || !slices.Equal(shop.Alarms, []string{"NOT verified"}) {
		t.Errorf("shop: drillEvery %d, alarms %q; want 604800, [NOT verified]", shop.DrillEvery, shop.Alarms)
	}

	crm := got.Targets[1]
	if d := crm.Drill; d == nil || d.Outcome != "failed" || d.FailedStep != "import" || d.Error != importError || d.RTOSeconds != 0 ||
		d.RPOSeconds != 2*3600 || d.Badge != "drill failed at import" {
		t.Errorf("crm's drill = %+v; want failed at import", d)
	}
	if crm.Verification == nil || crm.LastVerified == nil || crm.Verification.Operation != r.name("crm-1") || *crm.Verification != *crm.LastVerified {
		t.Errorf("crm's verification = %+v, lastVerified %+v; want crm-1 as both", crm.Verification, crm.LastVerified)
	}
	if !slices.Equal(crm.Alarms, []string{"drill failed at import"}) {
		t.Errorf("crm's alarms = %q; want [drill failed at import]", crm.Alarms)
	}

	if l := got.Targets[2]; l.Drill != nil || l.DrillEvery != 604800 || !slices.Equal(l.Alarms, []string{"drill overdue"}) || l.LastVerified == nil {
		t.Errorf("lagging = %+v; want no drill, overdue", l)
	}
	if w := got.Targets[3]; w.Drill != nil || w.Alarms != nil || w.LastVerified == nil || w.LastVerified.Operation != r.name("waiting-1") {
		t.Errorf("waiting = %+v; want waiting-1 verified, no drill and no alarm", w)
	}
	if p := got.Targets[4]; p.Verification == nil || p.Verification.Verified || p.Verification.Alarm || p.LastVerified != nil || p.DrillEvery != 0 || p.Alarms != nil ||
		!strings.HasPrefix(p.Verification.Text, "not verified: reading the output files") {
		t.Errorf("plain = %+v (verification %+v); want a check cut by time, no alarm, no drill", p, p.Verification)
	}
	if v := got.Targets[5]; v.Verification != nil || v.LastVerified != nil || v.Drill != nil || v.DrillEvery != 0 || v.Alarms != nil {
		t.Errorf("vault = %+v; want nothing checked: it has no export", v)
	}
}
