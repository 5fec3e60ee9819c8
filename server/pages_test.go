package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/server"
	"github.com/dsexport/dsexport/store/memstore"
	"github.com/dsexport/dsexport/store/storetest"
)

// pageRig is the server with its store on the Datastore emulator, times in
// Tokyo, and the default 10% shrink warning. Nothing here starts exports: the
// records are written straight into the store, as the poller would.
type pageRig struct {
	url     string
	store   storetest.Store
	project string
	now     time.Time
}

var tokyo = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		panic(err)
	}
	return loc
}()

func newPageRig(t *testing.T) *pageRig {
	t.Helper()
	st, project := testrig.Store(t)
	return newPageRigOn(t, st, project)
}

// newPageRigOn is newPageRig with st as the store and project as the
// exported project.
func newPageRigOn(t *testing.T, st interface {
	storetest.Store
	server.Records
}, project string) *pageRig {
	t.Helper()
	srv := httptest.NewServer(server.New(server.Config{
		Logger:   slog.New(slog.DiscardHandler),
		Defaults: poller.ExportRequest{Project: project, OutputURLPrefix: "gs://example-backups/daily"},
		Records:  st, Location: tokyo, ShrinkWarn: 0.10,
	}))
	t.Cleanup(srv.Close)
	// Whole seconds, so that "N hours ago" does not straddle a boundary.
	return &pageRig{url: srv.URL, store: st, project: project, now: time.Now().Truncate(time.Second)}
}

func (r *pageRig) name(id string) string { return "projects/" + r.project + "/operations/" + id }

// get fetches path and returns the status, the body and the Content-Type.
func (r *pageRig) get(t *testing.T, path string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(r.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// page fetches an HTML page that must answer 200 and be well formed.
func (r *pageRig) page(t *testing.T, path string) string {
	t.Helper()
	status, body, h := r.get(t, path)
	if status != http.StatusOK {
		t.Fatalf("GET %s = %d %s; want 200", path, status, body)
	}
	if got, want := h.Get("Content-Type"), "text/html; charset=utf-8"; got != want {
		t.Fatalf("GET %s: Content-Type = %q; want %q", path, got, want)
	}
	checkHTML(t, body, h)
	return body
}

// export is one recorded export: the operation, made in steps.
type export struct {
	id      string
	op      poller.Operation
	created time.Time
	// progress are snapshots before the last one (op), e.g. PROCESSING.
	progress []poller.Operation
	outcome  poller.Outcome
	// database is a named database the export is of, through the
	// Firestore Admin API ("": (default), through the Datastore one).
	database string
}

// add records e as the poller would: created, polled, then classified.
func (r *pageRig) add(t *testing.T, e export) poller.Record {
	t.Helper()
	ctx := context.Background()
	e.op.Name = r.name(e.id)
	if e.database != "" {
		e.op.Name = "projects/" + r.project + "/databases/" + e.database + "/operations/" + e.id
		e.op.Database = e.database
	}
	if e.op.Project == "" {
		e.op.Project = r.project
	}
	first := e.op
	if len(e.progress) > 0 {
		first = e.progress[0]
		first.Name, first.Project, first.Database = e.op.Name, e.op.Project, e.op.Database
	}
	rec, err := r.store.Create(ctx, first, e.created)
	if err != nil {
		t.Fatal(err)
	}
	steps := append([]poller.Operation{}, e.progress...)
	if len(steps) > 0 {
		steps = append(steps[1:], e.op)
	}
	for i, op := range steps {
		op.Name, op.Project, op.Database = e.op.Name, e.op.Project, e.op.Database
		if rec, err = r.store.AddSnapshot(ctx, e.op.Name, i+1, op, e.created.Add(time.Duration(i+1)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if e.outcome != poller.OutcomeNone {
		at := e.op.EndTime
		if at.IsZero() {
			at = e.created
		}
		if rec, err = r.store.SetOutcome(ctx, e.op.Name, e.outcome, at); err != nil {
			t.Fatal(err)
		}
	}
	return rec
}

// success is an export that finished ago ago after running 20 minutes.
func (r *pageRig) success(id string, ago time.Duration, entities, bytes int64) export {
	end := r.now.Add(-ago)
	start := end.Add(-20 * time.Minute)
	return export{
		id: id, created: start, outcome: poller.OutcomeSuccess,
		progress: []poller.Operation{{State: poller.StateProcessing, StartTime: start, Trigger: poller.TriggerCron,
			EntitiesCompleted: entities / 2, EntitiesEstimated: entities, BytesCompleted: bytes / 2, BytesEstimated: bytes}},
		op: poller.Operation{
			Done: true, State: poller.StateSuccessful, Trigger: poller.TriggerCron, StartTime: start, EndTime: end,
			OutputURLPrefix:   "gs://example-backups/daily",
			OutputURL:         "gs://example-backups/daily/" + id + "/" + id + ".overall_export_metadata",
			EntitiesCompleted: entities, EntitiesEstimated: entities, BytesCompleted: bytes, BytesEstimated: bytes,
		},
	}
}

var (
	trRE      = regexp.MustCompile(`(?s)<tr>.*?</tr>`)
	svgRE     = regexp.MustCompile(`(?s)<svg [^>]*>.*?</svg>`)
	badgeRE   = regexp.MustCompile(`<span class="badge (\w+)">([^<]+)</span>`)
	tbodyRE   = regexp.MustCompile(`(?s)<table class="stack" id="(\w+)">.*?<tbody>(.*?)</tbody>`)
	tagRE     = regexp.MustCompile(`<(/?)([a-zA-Z][a-zA-Z0-9]*)\b[^>]*?(/?)>`)
	styleRE   = regexp.MustCompile(`(?s)<style>(.*?)</style>`)
	circleRE  = regexp.MustCompile(`<circle [^>]*cx="([0-9.]+)" cy="([0-9.]+)"`)
	viewBoxRE = regexp.MustCompile(`viewBox="0 0 ([0-9.]+) ([0-9.]+)"`)
)

// voidElements have no end tag in HTML.
var voidElements = map[string]bool{"meta": true, "br": true, "link": true, "img": true, "hr": true, "input": true, "wbr": true}

// checkHTML checks what a browser and a screen reader rely on: the document
// frame, balanced tags, the inline style sheet allowed by the policy, and
// that every chart is labelled and draws inside its view box.
func checkHTML(t *testing.T, body string, h http.Header) {
	t.Helper()
	for _, want := range []string{"<!doctype html>", `<html lang="en">`, `<meta name="viewport" content="width=device-width, initial-scale=1">`, "<title>", "<h1>", "</html>"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	var stack []string
	for _, m := range tagRE.FindAllStringSubmatch(body, -1) {
		closing, name, selfClosing := m[1] == "/", strings.ToLower(m[2]), m[3] == "/"
		switch {
		case voidElements[name] || selfClosing:
		case closing:
			if len(stack) == 0 || stack[len(stack)-1] != name {
				t.Fatalf("page has </%s> where open elements are %v:\n%s", name, stack, body)
			}
			stack = stack[:len(stack)-1]
		default:
			stack = append(stack, name)
		}
	}
	if len(stack) != 0 {
		t.Fatalf("page leaves %v open", stack)
	}
	// The policy allows the inline style sheet by its hash: a template that
	// altered the sheet would leave the page unstyled.
	m := styleRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("page has no <style>")
	}
	sum := sha256.Sum256([]byte(m[1]))
	if hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(h.Get("Content-Security-Policy"), hash) {
		t.Errorf("Content-Security-Policy %q does not allow the page's style sheet %s", h.Get("Content-Security-Policy"), hash)
	}
	for _, svg := range svgRE.FindAllString(body, -1) {
		if !strings.Contains(svg, `role="img"`) || !strings.Contains(svg, `aria-label="`) || !strings.Contains(svg, "<title>") {
			t.Errorf("chart is not labelled (role, aria-label, title): %.200s", svg)
		}
		vb := viewBoxRE.FindStringSubmatch(svg)
		if vb == nil {
			t.Fatalf("chart has no viewBox: %.200s", svg)
		}
		w, _ := strconv.ParseFloat(vb[1], 64)
		hgt, _ := strconv.ParseFloat(vb[2], 64)
		for _, c := range circleRE.FindAllStringSubmatch(svg, -1) {
			x, _ := strconv.ParseFloat(c[1], 64)
			y, _ := strconv.ParseFloat(c[2], 64)
			if x < 0 || x > w || y < 0 || y > hgt {
				t.Errorf("chart point (%v, %v) lies outside the view box %vx%v", x, y, w, hgt)
			}
		}
	}
}

// rows returns the body rows of the table with the given id.
func rows(t *testing.T, body, id string) []string {
	t.Helper()
	for _, m := range tbodyRE.FindAllStringSubmatch(body, -1) {
		if m[1] == id {
			return trRE.FindAllString(m[2], -1)
		}
	}
	t.Fatalf("page has no table %q", id)
	return nil
}

// badges returns the "class text" of each state badge in s.
func badges(s string) []string {
	var out []string
	for _, m := range badgeRE.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1]+" "+m[2])
	}
	return out
}

// apiError returns the status and "error" message of a JSON error answer.
func (r *pageRig) apiError(t *testing.T, path string) (int, string) {
	t.Helper()
	status, body, h := r.get(t, path)
	if got := h.Get("Content-Type"); got != "application/json" {
		t.Fatalf("GET %s: Content-Type = %q; want application/json", path, got)
	}
	return status, errorMessage(t, []byte(body))
}

type listJSON struct {
	Exports []json.RawMessage `json:"exports"`
	Next    *string           `json:"next"`
}

func (r *pageRig) list(t *testing.T, query string) ([]record, string) {
	t.Helper()
	status, body, _ := r.get(t, "/api/exports"+query)
	if status != http.StatusOK {
		t.Fatalf("GET /api/exports%s = %d %s; want 200", query, status, body)
	}
	var l listJSON
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		t.Fatalf("GET /api/exports%s: %q is not a list: %v", query, body, err)
	}
	if l.Exports == nil || l.Next == nil {
		t.Fatalf("GET /api/exports%s = %s; want both \"exports\" (an array) and \"next\"", query, body)
	}
	recs := make([]record, len(l.Exports))
	for i, raw := range l.Exports {
		recs[i] = decodeRecord(t, raw)
	}
	return recs, *l.Next
}

func TestStatusPageEmpty(t *testing.T) {
	r := newPageRig(t)
	body := r.page(t, "/")
	if !strings.Contains(body, "There are no exports yet.") {
		t.Errorf("empty status page does not say there are no exports yet:\n%s", body)
	}
	if strings.Contains(body, "<svg") || strings.Contains(body, `<table class="stack" id="exports"`) {
		t.Errorf("empty status page draws a chart or an exports table:\n%s", body)
	}
	// The one target, the environment's, has never had a good backup.
	if got := rows(t, body, "targets"); len(got) != 1 || !strings.Contains(got[0], `<span class="badge bad">never</span>`) {
		t.Errorf("empty status page's targets = %q; want one row, never", got)
	}
	recs, next := r.list(t, "")
	if len(recs) != 0 || next != "" {
		t.Errorf("GET /api/exports on an empty store = %v, next %q; want none", recs, next)
	}
}

func TestStatusPageRunning(t *testing.T) {
	r := newPageRig(t)
	start := r.now.Add(-10 * time.Minute)
	running := poller.Operation{State: poller.StateProcessing, Trigger: poller.TriggerManual, StartTime: start,
		OutputURLPrefix: "gs://example-backups/daily", Kinds: []string{"User"},
		EntitiesCompleted: 450, EntitiesEstimated: 1000, BytesCompleted: 3 << 20, BytesEstimated: 10 << 20}
	r.add(t, export{id: "run1", created: start, op: running, progress: []poller.Operation{
		{State: poller.StateInitializing, Trigger: poller.TriggerManual, StartTime: start}}})

	body := r.page(t, "/")
	rs := rows(t, body, "exports")
	if len(rs) != 1 {
		t.Fatalf("status page lists %d exports; want 1:\n%s", len(rs), body)
	}
	row := rs[0]
	if got, want := badges(row), []string{"run running"}; !slices.Equal(got, want) {
		t.Errorf("running export's badges = %q; want %q", got, want)
	}
	for _, want := range []string{
		`<progress max="100" value="45"`, "45.0% of entities", "450 of 1,000", "3.0 MiB", "manual", r.project,
		`href="/exports/run1"`,
		"gcloud datastore operations describe " + r.name("run1"),
		start.In(tokyo).Format("2006-01-02 15:04") + " JST", "so far",
	} {
		if !strings.Contains(row, want) {
			t.Errorf("running export's row lacks %q:\n%s", want, row)
		}
	}
	if !strings.Contains(body, "No export has finished yet") || !strings.Contains(body, "is under way: 45.0% of entities") {
		t.Errorf("at a glance does not say an export is under way and none finished:\n%s", body)
	}

	page := r.page(t, "/exports/run1")
	for _, want := range []string{"Export run1", `aria-label="Progress over time.`, `<progress max="100" value="45"`, "30.0%", "PROCESSING"} {
		if !strings.Contains(page, want) {
			t.Errorf("export page lacks %q:\n%s", want, page)
		}
	}
	snaps := rows(t, page, "snapshots")
	if len(snaps) != 2 || !strings.Contains(snaps[0], "INITIALIZING") || !strings.Contains(snaps[1], "450 of 1,000 (45.0%)") {
		t.Errorf("snapshot rows = %q; want INITIALIZING then 450 of 1,000 (45.0%%)", snaps)
	}
	// Only the second snapshot has an estimate: one point per series.
	if got := len(circleRE.FindAllString(page, -1)); got != 2 {
		t.Errorf("progress chart has %d points; want 2 (entities and bytes of the one estimated snapshot)", got)
	}
}

func TestStatusPageFailed(t *testing.T) {
	r := newPageRig(t)
	good := r.add(t, r.success("good", 30*time.Hour, 1000, 5000))
	failedStart := r.now.Add(-3*time.Hour - 10*time.Minute)
	r.add(t, export{id: "bad", created: failedStart, outcome: poller.OutcomeFailure, op: poller.Operation{
		Done: true, State: poller.StateFailed, Trigger: poller.TriggerCron, StartTime: failedStart, EndTime: r.now.Add(-3*time.Hour - 5*time.Minute),
		ErrorCode: 7, ErrorMessage: "service-123@gcp-sa-firestore does not have storage.objects.create access",
	}})
	refusedAt := r.now.Add(-time.Hour)
	r.add(t, export{id: "refused-20261123T030000Z-0a0b0c0d", created: refusedAt, outcome: poller.OutcomeFailure, op: poller.Operation{
		Done: true, Refused: true, Trigger: poller.TriggerManual, OutputURLPrefix: "gs://example-backups/daily",
		ErrorMessage: "bucket example-backups does not exist",
	}})

	body := r.page(t, "/")
	rs := rows(t, body, "exports")
	if len(rs) != 3 {
		t.Fatalf("status page lists %d exports; want 3", len(rs))
	}
	refused, failed, succeeded := rs[0], rs[1], rs[2]
	if got, want := badges(failed), []string{"bad failed"}; !slices.Equal(got, want) {
		t.Errorf("failed export's badges = %q; want %q", got, want)
	}
	if want := "gcloud datastore operations describe " + r.name("bad"); !strings.Contains(failed, want) {
		t.Errorf("failed export's row lacks %q:\n%s", want, failed)
	}
	if want := "does not have storage.objects.create access (code 7 PERMISSION_DENIED)"; !strings.Contains(failed, want) {
		t.Errorf("failed export's row lacks the error %q:\n%s", want, failed)
	}
	if got, want := badges(refused), []string{"bad not started"}; !slices.Equal(got, want) {
		t.Errorf("refused start's badges = %q; want %q", got, want)
	}
	if strings.Contains(refused, "gcloud") || !strings.Contains(refused, "bucket example-backups does not exist") {
		t.Errorf("refused start's row has a command or lacks the API's message:\n%s", refused)
	}
	if want := "gcloud datastore import " + good.OutputURL; !strings.Contains(succeeded, want) {
		t.Errorf("success's row lacks %q:\n%s", want, succeeded)
	}
	// The newest finished export is the refusal: the glance says the last
	// backup failed and when the last success was.
	for _, want := range []string{"Last backup: not started 1 hour ago", "Error: bucket example-backups does not exist", "last success 30 hours ago (1,000 entities, 4.9 KiB)"} {
		if !strings.Contains(body, want) {
			t.Errorf("at a glance lacks %q:\n%s", want, body)
		}
	}

	page := r.page(t, "/exports/bad")
	for _, want := range []string{`<span class="badge bad">failed</span>`, "gcloud datastore operations describe " + r.name("bad"), "PERMISSION_DENIED"} {
		if !strings.Contains(page, want) {
			t.Errorf("failed export's page lacks %q", want)
		}
	}
	page = r.page(t, "/exports/refused-20261123T030000Z-0a0b0c0d")
	if strings.Contains(page, "gcloud datastore operations describe") || !strings.Contains(page, "no operation to describe") {
		t.Errorf("refused start's page offers a describe command or does not say why not:\n%s", page)
	}
}

func TestStatusPageShrink(t *testing.T) {
	r := newPageRig(t)
	r.add(t, r.success("day1", 77*time.Hour, 10000, 1<<30))
	r.add(t, r.success("day2", 53*time.Hour, 10100, 1<<30))
	// Another filter, far smaller: neither a shrink nor in the chart.
	users := r.success("users", 40*time.Hour, 100, 1<<20)
	users.op.Kinds = []string{"User"}
	r.add(t, users)
	r.add(t, r.success("day3", 29*time.Hour, 9000, 900<<20)) // 10.9% fewer than day2
	r.add(t, r.success("day4", 5*time.Hour+30*time.Minute, 9050, 905<<20))

	body := r.page(t, "/")
	rs := rows(t, body, "exports")
	if len(rs) != 5 {
		t.Fatalf("status page lists %d exports; want 5", len(rs))
	}
	for i, id := range []string{"day4", "day3", "users", "day2", "day1"} {
		if !strings.Contains(rs[i], `href="/exports/`+id+`"`) {
			t.Errorf("row %d is not %s (newest first):\n%s", i, id, rs[i])
		}
		marked := strings.Contains(rs[i], `<span class="badge warn">shrink</span>`)
		if want := id == "day3"; marked != want {
			t.Errorf("row of %s marked as a shrink: %v; want %v", id, marked, want)
		}
	}
	if want := "10.9% fewer entities than the previous success (10,100)"; !strings.Contains(rs[1], want) {
		t.Errorf("shrunk row lacks %q:\n%s", want, rs[1])
	}
	for _, want := range []string{
		"Last backup: succeeded 5 hours ago", "9,050 entities", "905.0 MiB", "took 20m0s", "+0.6% entities vs the previous success 29 hours ago",
		"Last 4 successful exports of " + r.project,
	} {
		if !strings.Contains(html.UnescapeString(body), want) {
			t.Errorf("status page lacks %q:\n%s", want, body)
		}
	}
	svgs := svgRE.FindAllString(body, -1)
	if len(svgs) != 3 {
		t.Fatalf("status page has %d charts; want 3 (entities, bytes, duration)", len(svgs))
	}
	for i, title := range []string{"Entities exported", "Bytes exported", "Duration"} {
		if !strings.Contains(svgs[i], "<title>"+title+"</title>") {
			t.Errorf("chart %d is not %q:\n%s", i, title, svgs[i])
		}
		// The four successes of the charted filter, not the other filter's.
		if got := len(circleRE.FindAllString(svgs[i], -1)); got != 4 {
			t.Errorf("chart %q has %d points; want 4", title, got)
		}
	}
	marks := regexp.MustCompile(`<polygon class="shrink"[^>]*><title>([^<]*)</title>`).FindAllStringSubmatch(svgs[0], -1)
	if len(marks) != 1 || !strings.Contains(marks[0][1], "9,000 entities") {
		t.Errorf("entities chart's shrink marks = %q; want one, on 9,000 entities", marks)
	}
	if !strings.Contains(svgs[0], "1 shrink warning marked") {
		t.Errorf("entities chart's label does not count the shrink warning:\n%s", svgs[0])
	}
	if strings.Contains(svgs[1], "shrink") || strings.Contains(svgs[2], "shrink") {
		t.Errorf("bytes or duration chart marks a shrink, which is about entities")
	}
}

// TestStatusPageDatabases checks that exports of two databases of one
// project, of the same kinds, are not compared: the small database's
// export is no shrink of the large one's, and the trend charts the newest
// success's database alone.
func TestStatusPageDatabases(t *testing.T) {
	r := newPageRigOn(t, memstore.New(), "shop-prod")
	analytics := func(e export) export { e.database = "analytics"; return e }
	r.add(t, r.success("d1", 77*time.Hour, 1_000_000, 1<<30))
	r.add(t, analytics(r.success("a1", 60*time.Hour, 1000, 1<<20)))
	r.add(t, r.success("d2", 53*time.Hour, 1_010_000, 1<<30))
	r.add(t, analytics(r.success("a2", 5*time.Hour, 1005, 1<<20)))

	body := r.page(t, "/")
	if strings.Contains(body, `<span class="badge warn">shrink</span>`) || strings.Contains(body, "fewer entities") {
		t.Errorf("status page flags a shrink between two databases:\n%s", body)
	}
	for _, want := range []string{
		"+0.5% entities vs the previous success 2 days ago",
		"Last 2 successful exports of shop-prod/databases/analytics",
	} {
		if !strings.Contains(html.UnescapeString(body), want) {
			t.Errorf("status page lacks %q:\n%s", want, body)
		}
	}
	svgs := svgRE.FindAllString(body, -1)
	if len(svgs) != 3 {
		t.Fatalf("status page has %d charts; want 3", len(svgs))
	}
	if got := len(circleRE.FindAllString(svgs[0], -1)); got != 2 || strings.Contains(svgs[0], "1,010,000") {
		t.Errorf("entities chart has %d points; want 2, analytics' only:\n%s", got, svgs[0])
	}
}

func TestExportPageOvershoot(t *testing.T) {
	r := newPageRig(t)
	e := r.success("over", time.Hour, 1200, 2000)
	// The estimate was 0 at first and then below what was exported.
	e.progress = []poller.Operation{
		{State: poller.StateProcessing, StartTime: e.op.StartTime},
		{State: poller.StateProcessing, StartTime: e.op.StartTime, EntitiesCompleted: 600, EntitiesEstimated: 1000, BytesCompleted: 1000, BytesEstimated: 1600},
	}
	e.op.EntitiesEstimated, e.op.BytesEstimated = 1000, 1600
	r.add(t, e)
	page := r.page(t, "/exports/over")
	snaps := rows(t, page, "snapshots")
	if len(snaps) != 3 {
		t.Fatalf("export page has %d snapshot rows; want 3", len(snaps))
	}
	if strings.Contains(snaps[0], "%") {
		t.Errorf("snapshot without an estimate shows a percentage:\n%s", snaps[0])
	}
	// Past the estimate the share stays at 100%, as present's one rule says.
	if !strings.Contains(snaps[2], "1,200 of 1,000 (100%)") || !strings.Contains(snaps[2], "of 1.6 KiB (100%)") {
		t.Errorf("last snapshot row does not show 100%% of entities and of bytes:\n%s", snaps[2])
	}
	// checkHTML has checked that the points above 100% stay in the chart.
	if got := len(circleRE.FindAllString(page, -1)); got != 4 {
		t.Errorf("progress chart has %d points; want 4 (two estimated snapshots, two series)", got)
	}
	if !strings.Contains(page, "gcloud datastore import gs://example-backups/daily/over/over.overall_export_metadata") {
		t.Errorf("export page lacks the restore command:\n%s", page)
	}
}

func TestAPIExport(t *testing.T) {
	r := newPageRig(t)
	r.add(t, r.success("one", time.Hour, 1200, 2000))
	status, body, _ := r.get(t, "/api/exports/one")
	if status != http.StatusOK {
		t.Fatalf("GET /api/exports/one = %d %s; want 200", status, body)
	}
	var got struct {
		Export    json.RawMessage `json:"export"`
		Snapshots []struct {
			Poll              *int   `json:"poll"`
			Time              string `json:"time"`
			State             string `json:"state"`
			Done              *bool  `json:"done"`
			EntitiesCompleted *int64 `json:"entitiesCompleted"`
			EntitiesEstimated *int64 `json:"entitiesEstimated"`
			BytesCompleted    *int64 `json:"bytesCompleted"`
			BytesEstimated    *int64 `json:"bytesEstimated"`
		} `json:"snapshots"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("GET /api/exports/one = %s: %v", body, err)
	}
	if rec := decodeRecord(t, got.Export); rec.Name != r.name("one") || rec.Outcome != "success" || !rec.Done {
		t.Errorf("export = %+v; want the successful %s", rec, r.name("one"))
	}
	if len(got.Snapshots) != 2 {
		t.Fatalf("snapshots = %+v; want 2", got.Snapshots)
	}
	last := got.Snapshots[1]
	if last.Poll == nil || *last.Poll != 1 || last.State != "SUCCESSFUL" || last.Done == nil || !*last.Done ||
		last.EntitiesCompleted == nil || *last.EntitiesCompleted != 1200 || last.BytesEstimated == nil || *last.BytesEstimated != 2000 {
		t.Errorf("last snapshot = %+v; want poll 1, SUCCESSFUL, done, 1200 entities, 2000 bytes estimated", last)
	}
	if _, err := time.Parse(time.RFC3339Nano, last.Time); err != nil {
		t.Errorf("snapshot time %q is not RFC 3339: %v", last.Time, err)
	}
}

func TestAPIPagination(t *testing.T) {
	r := newPageRig(t)
	var want []string
	for i := range 5 {
		r.add(t, r.success(fmt.Sprintf("op%d", i), time.Duration(10-i)*time.Hour, 100, 100))
		want = append([]string{r.name(fmt.Sprintf("op%d", i))}, want...)
	}
	var got []string
	var sizes []int
	cursor := ""
	for range 5 {
		q := "?limit=2"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		recs, next := r.list(t, q)
		sizes = append(sizes, len(recs))
		for _, rec := range recs {
			got = append(got, rec.Name)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(sizes, []int{2, 2, 1}) {
		t.Errorf("page sizes = %v; want [2 2 1]", sizes)
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged names = %q; want %q (newest first)", got, want)
	}
	// Without a limit, one page of 20 holds them all.
	if recs, next := r.list(t, ""); len(recs) != 5 || next != "" {
		t.Errorf("GET /api/exports = %d records, next %q; want 5 and none", len(recs), next)
	}
}

func TestBadRequests(t *testing.T) {
	r := newPageRig(t)
	r.add(t, r.success("known", time.Hour, 100, 100))
	tests := []struct {
		path   string
		status int
		want   string // in the message
	}{
		{"/api/exports?limit=0", 400, "limit"},
		{"/api/exports?limit=101", 400, "limit"},
		{"/api/exports?limit=ten", 400, "limit"},
		{"/api/exports?limit=", 400, "limit"},
		{"/api/exports?limit=-1", 400, "limit"},
		{"/api/exports?cursor=not-a-cursor", 400, "cursor"},
		{"/api/exports?cursor=%21%21", 400, "cursor"},
		{"/api/exports/unknown", 404, "not found"},
		{"/api/exports/bad.id", 400, "not an operation id"},
		{"/api/exports/a%2Fb", 400, "not an operation id"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			status, msg := r.apiError(t, tt.path)
			if status != tt.status || !strings.Contains(msg, tt.want) {
				t.Errorf("GET %s = %d %q; want %d naming %q", tt.path, status, msg, tt.status, tt.want)
			}
		})
	}
	pages := []struct {
		path   string
		status int
		want   string
	}{
		{"/exports/unknown", 404, "export " + r.name("unknown") + " not found"},
		{"/exports/bad.id", 400, "not an operation id"},
		{"/exports/a%2Fb", 400, "not an operation id"},
		{"/index.html", 404, ""},
	}
	for _, tt := range pages {
		t.Run(tt.path, func(t *testing.T) {
			status, body, h := r.get(t, tt.path)
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Errorf("GET %s = %d %s; want %d saying %q", tt.path, status, body, tt.status, tt.want)
			}
			if tt.want != "" {
				checkHTML(t, body, h)
			}
		})
	}
}

func TestPagesWithoutStore(t *testing.T) {
	srv := httptest.NewServer(server.New(server.Config{Logger: slog.New(slog.DiscardHandler), Defaults: poller.ExportRequest{Project: "example-proj"}}))
	t.Cleanup(srv.Close)
	for _, path := range []string{"/", "/exports/x", "/api/exports", "/api/exports/x"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "no store") {
			t.Errorf("GET %s without a store = %d %s; want 503 saying there is no store", path, resp.StatusCode, body)
		}
	}
}
