package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
	"github.com/dsexport/dsexport/store"
)

// Records is the subset of *store.Store that the status page and the JSON
// API read.
type Records interface {
	// ListPage returns up to limit records newest first from cursor, and the
	// next page's cursor ("" after the last page). A cursor it did not
	// return is an error wrapping store.ErrInvalidCursor.
	ListPage(ctx context.Context, limit int, cursor string) ([]poller.Record, string, error)
	// Get returns one record, or an error wrapping poller.ErrNotFound.
	Get(ctx context.Context, name string) (poller.Record, error)
	// Snapshots returns an operation's history, oldest first.
	Snapshots(ctx context.Context, name string) ([]poller.Snapshot, error)
}

// The page sizes. The status page reads further back than it lists, up to
// maxScan records, to find trendSize successes of the charted filter and
// each listed success's predecessor.
const (
	recentSize   = 50
	trendSize    = 30
	scanPage     = 100
	maxScan      = 500
	apiLimit     = 20
	apiLimitMax  = 100
	listTimeFmt  = "2006-01-02 15:04 MST"
	shortTimeFmt = "Jan 2"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static/style.css
var styleCSS string

// tmpl holds the pages, parsed once; it is never changed after.
var tmpl = template.Must(template.New("").ParseFS(templateFiles, "templates/*.html"))

// contentSecurityPolicy allows the inline style sheet by its hash and
// nothing else: the pages have no scripts, images, fonts or frames.
var contentSecurityPolicy = func() string {
	sum := sha256.Sum256([]byte(styleCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
}()

// routePages adds the status page, each export's page and the JSON API.
func (s *Server) routePages() {
	s.mux.Handle("GET /{$}", s.page(s.statusPage))
	s.mux.Handle("GET /exports/{id}", s.page(s.exportPage))
	s.mux.Handle("GET /api/exports", s.handle(s.apiList))
	s.mux.Handle("GET /api/exports/{id}", s.handle(s.apiExport))
}

func (s *Server) loc() *time.Location {
	if s.cfg.Location == nil {
		return time.UTC
	}
	return s.cfg.Location
}

// records is the store, or a 503 when the server was built without one.
func (s *Server) records() (Records, error) {
	if s.cfg.Records == nil {
		return nil, &httpError{status: http.StatusServiceUnavailable, msg: "no store is configured for the status page and the API"}
	}
	return s.cfg.Records, nil
}

// page adapts a handler that renders a page: its errors are answered as a
// small HTML page with the same status and message handle would give.
func (s *Server) page(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		status, msg := http.StatusInternalServerError, err.Error()
		var he *httpError
		if errors.As(err, &he) {
			status = he.status
		}
		level := slog.LevelWarn
		if status >= 500 {
			level = slog.LevelError
		}
		s.cfg.Logger.Log(r.Context(), level, "request failed", "method", r.Method, "path", r.URL.Path, "status", status, "caller", CallerFrom(r.Context()), "err", err)
		s.render(w, r, status, "error", errorView{pageView: newPageView(http.StatusText(status)), Status: status, Message: msg})
	})
}

// render executes a page into a buffer first, so that a template error
// answers 500 instead of half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, v any) {
	var b bytes.Buffer
	if err := tmpl.ExecuteTemplate(&b, name, v); err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "page not rendered", "page", name, "err", err)
		http.Error(w, "page not rendered: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// pageView is what every page's frame shows.
type pageView struct {
	Title string
	CSS   template.CSS
}

func newPageView(title string) pageView {
	// The style sheet is ours, embedded at build time.
	return pageView{Title: title, CSS: template.CSS(styleCSS)}
}

type errorView struct {
	pageView
	Status  int
	Message string
}

// opID is the last segment of an operation name, the id of its page.
func opID(name string) string {
	return name[strings.LastIndexByte(name, '/')+1:]
}

// nameOf turns the {id} of a path into the operation name in the configured
// project: 400 when it cannot be one.
func (s *Server) nameOf(r *http.Request) (string, error) {
	id := r.PathValue("id")
	name := "projects/" + s.cfg.Defaults.Project + "/operations/" + id
	if _, err := poller.ParseName(name); err != nil {
		return "", badRequest("export id %q: not an operation id (letters, digits, - and _): %v", id, err)
	}
	return name, nil
}

// lookup reads one record and its history; 404 when it is not recorded.
func (s *Server) lookup(ctx context.Context, r *http.Request) (poller.Record, []poller.Snapshot, error) {
	recs, err := s.records()
	if err != nil {
		return poller.Record{}, nil, err
	}
	name, err := s.nameOf(r)
	if err != nil {
		return poller.Record{}, nil, err
	}
	rec, err := recs.Get(ctx, name)
	if errors.Is(err, poller.ErrNotFound) {
		return poller.Record{}, nil, &httpError{status: http.StatusNotFound, msg: fmt.Sprintf("export %s not found: dsexport has no record of it", name)}
	}
	if err != nil {
		return poller.Record{}, nil, err
	}
	snaps, err := recs.Snapshots(ctx, name)
	if err != nil {
		return poller.Record{}, nil, err
	}
	return rec, snaps, nil
}

// JSON API

// snapshotJSON is a snapshot in the API.
type snapshotJSON struct {
	Poll              int          `json:"poll"`
	Time              string       `json:"time"`
	State             poller.State `json:"state"`
	Done              bool         `json:"done"`
	EntitiesCompleted int64        `json:"entitiesCompleted"`
	EntitiesEstimated int64        `json:"entitiesEstimated"`
	BytesCompleted    int64        `json:"bytesCompleted"`
	BytesEstimated    int64        `json:"bytesEstimated"`
}

func (s *Server) apiList(w http.ResponseWriter, r *http.Request) error {
	recs, err := s.records()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit := apiLimit
	if q.Has("limit") {
		v := q.Get("limit")
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > apiLimitMax {
			return badRequest("limit: %q is not a whole number from 1 to %d", v, apiLimitMax)
		}
		limit = n
	}
	cursor := q.Get("cursor")
	page, next, err := recs.ListPage(r.Context(), limit, cursor)
	if errors.Is(err, store.ErrInvalidCursor) {
		return badRequest("cursor: %q is not a cursor this API returned; start again without one", cursor)
	}
	if err != nil {
		return err
	}
	if page == nil {
		page = []poller.Record{}
	}
	writeJSON(w, http.StatusOK, struct {
		Exports []poller.Record `json:"exports"`
		Next    string          `json:"next"`
	}{page, next})
	return nil
}

func (s *Server) apiExport(w http.ResponseWriter, r *http.Request) error {
	rec, snaps, err := s.lookup(r.Context(), r)
	if err != nil {
		return err
	}
	out := make([]snapshotJSON, len(snaps))
	for i, sn := range snaps {
		out[i] = snapshotJSON{
			Poll: sn.Poll, Time: sn.Time.UTC().Format(time.RFC3339Nano), State: sn.State, Done: sn.Done,
			EntitiesCompleted: sn.EntitiesCompleted, EntitiesEstimated: sn.EntitiesEstimated,
			BytesCompleted: sn.BytesCompleted, BytesEstimated: sn.BytesEstimated,
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Export    poller.Record  `json:"export"`
		Snapshots []snapshotJSON `json:"snapshots"`
	}{rec, out})
	return nil
}

// Status page

type statusView struct {
	pageView
	Glance *glance
	Rows   []exportRow
	Trend  *trend
	// More says the list shows only the newest records.
	More bool
}

// glance answers at once whether the last export worked and how big it was.
type glance struct {
	Badge    badge
	Headline string // "Last backup: succeeded 5 hours ago"
	Details  []string
	ID       string
	Running  *exportRow // an export under way, if the newest one is
	Warning  string
}

type badge struct {
	Class, Text string
}

// exportRow is one export as the pages show it.
type exportRow struct {
	ID, Name, Project, Trigger, State string
	Badge                             badge
	Started, StartedISO               string
	Ended, EndedISO                   string
	Duration                          string
	Entities, Bytes, BytesExact       string
	OutputURL, OutputURLPrefix        string
	Kinds, Namespaces                 string
	Command, CommandLabel             string
	Error, LastError                  string
	Polls                             int
	Shrink                            string
	EntitiesPct, BytesPct             string // "" without an estimate
	EntitiesPctValue, BytesPctValue   int
	Created                           string
	Reported                          string
	Refused                           bool
}

// exportBadge is the state an operator cares about, in words and a colour.
func exportBadge(rec poller.Record) badge {
	outcome := rec.Outcome
	if outcome == poller.OutcomeNone && rec.Done {
		// Done but not yet classified by the poller: the snapshot says how.
		outcome = poller.Classify(rec.Operation)
	}
	switch {
	case rec.Refused:
		return badge{"bad", "not started"}
	case outcome == poller.OutcomeSuccess:
		return badge{"ok", "succeeded"}
	case outcome == poller.OutcomeFailure && (rec.State == poller.StateCancelled || rec.ErrorCode == 1):
		return badge{"bad", "cancelled"}
	case outcome == poller.OutcomeFailure:
		return badge{"bad", "failed"}
	case outcome == poller.OutcomeTimeout:
		return badge{"warn", "timed out"}
	case outcome == poller.OutcomeUnexpected:
		return badge{"warn", "unexpected end"}
	case outcome == poller.OutcomeNone:
		return badge{"run", "running"}
	}
	return badge{"warn", string(outcome)}
}

func (s *Server) row(rec poller.Record, now time.Time) exportRow {
	loc := s.loc()
	project := rec.Project
	if project == "" {
		project, _ = poller.ParseName(rec.Name)
	}
	e := exportRow{
		ID: opID(rec.Name), Name: rec.Name, Project: project, Trigger: string(rec.Trigger), State: string(rec.State),
		Badge: exportBadge(rec), Entities: present.Count(rec.EntitiesCompleted),
		Bytes: present.Bytes(rec.BytesCompleted), BytesExact: present.Count(rec.BytesCompleted) + " bytes",
		OutputURL: rec.OutputURL, OutputURLPrefix: rec.OutputURLPrefix,
		Kinds: filterList(rec.Kinds, false), Namespaces: filterList(rec.Namespaces, true),
		Polls: rec.Polls, LastError: rec.LastError, Refused: rec.Refused,
		Created: timeIn(rec.Created, loc, present.TimeLayout), Reported: timeIn(rec.ReportedAt, loc, present.TimeLayout),
	}
	if e.Trigger == "" {
		e.Trigger = "—"
	}
	start := rec.StartTime
	if start.IsZero() {
		start = rec.Created // a refused start has no operation, only its record
	}
	e.Started, e.StartedISO = timeIn(start, loc, listTimeFmt), isoTime(start)
	e.Ended, e.EndedISO = timeIn(rec.EndTime, loc, listTimeFmt), isoTime(rec.EndTime)
	switch {
	case !rec.StartTime.IsZero() && !rec.EndTime.IsZero():
		e.Duration = humanDuration(rec.EndTime.Sub(rec.StartTime))
	case !rec.StartTime.IsZero() && e.Badge.Class == "run":
		e.Duration = humanDuration(now.Sub(rec.StartTime)) + " so far"
	default:
		e.Duration = "—"
	}
	if rec.EntitiesEstimated > 0 && !rec.Done {
		e.Entities += " of " + present.Count(rec.EntitiesEstimated)
	}
	if !rec.Done {
		e.EntitiesPct, e.EntitiesPctValue = percent(rec.EntitiesCompleted, rec.EntitiesEstimated)
		e.BytesPct, e.BytesPctValue = percent(rec.BytesCompleted, rec.BytesEstimated)
	}
	if rec.ErrorMessage != "" || rec.ErrorCode != 0 {
		e.Error = present.ErrorText(rec.Operation)
	}
	switch {
	case rec.Refused:
		// Nothing ran at Google: there is nothing to describe or restore.
	case e.Badge.Class == "ok" && rec.OutputURL != "":
		e.CommandLabel, e.Command = "Restore", "gcloud datastore import "+rec.OutputURL
	case e.Badge.Class != "ok":
		e.CommandLabel, e.Command = "Details", "gcloud datastore operations describe "+rec.Name
	}
	return e
}

// percent is completed of estimated in whole percent for a label and for a
// <progress> capped at 100; without an estimate there is none.
func percent(completed, estimated int64) (string, int) {
	if estimated <= 0 {
		return "", 0
	}
	p := int(math.Round(100 * float64(completed) / float64(estimated)))
	return strconv.Itoa(p) + "%", min(p, 100)
}

func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) error {
	recs, err := s.records()
	if err != nil {
		return err
	}
	ctx := r.Context()
	recent, next, err := recs.ListPage(ctx, recentSize, "")
	if err != nil {
		return err
	}
	all := recent
	for next != "" && len(all) < maxScan && !trendComplete(all) {
		var more []poller.Record
		if more, next, err = recs.ListPage(ctx, scanPage, next); err != nil {
			return err
		}
		all = append(all, more...)
	}
	now := time.Now()
	shrinks := s.shrinks(all)
	v := statusView{pageView: newPageView("Datastore exports"), More: len(all) > len(recent) || next != ""}
	for _, rec := range recent {
		row := s.row(rec, now)
		if sh, ok := shrinks[rec.Name]; ok {
			row.Shrink = shrinkText(sh)
		}
		v.Rows = append(v.Rows, row)
	}
	v.Glance = s.glance(all, shrinks, now)
	v.Trend = s.trend(all, shrinks)
	s.render(w, r, http.StatusOK, "status", v)
	return nil
}

func succeeded(rec poller.Record) bool { return rec.Outcome == poller.OutcomeSuccess }

func filterOf(rec poller.Record) string {
	return poller.FilterKey(rec.Project, rec.Kinds, rec.Namespaces)
}

// trendComplete tells whether recs, newest first, hold enough successes of
// the newest success's filter for the chart, and one more to compare the
// oldest with.
func trendComplete(recs []poller.Record) bool {
	key, n := "", 0
	for _, rec := range recs {
		if !succeeded(rec) {
			continue
		}
		if key == "" {
			key = filterOf(rec)
		}
		if filterOf(rec) == key {
			n++
		}
	}
	return n > trendSize
}

// shrinks finds, in recs newest first, every success that holds more than
// ShrinkWarn fewer entities than the previous success of its project and
// filter, as the poller's warning decides.
func (s *Server) shrinks(recs []poller.Record) map[string]poller.Shrink {
	out := map[string]poller.Shrink{}
	if s.cfg.ShrinkWarn <= 0 {
		return out
	}
	// Walking oldest first, the last success seen of each filter is the
	// previous one.
	prev := map[string]poller.Record{}
	for i := len(recs) - 1; i >= 0; i-- {
		rec := recs[i]
		if !succeeded(rec) {
			continue
		}
		key := filterOf(rec)
		if p, ok := prev[key]; ok && float64(rec.EntitiesCompleted) < float64(p.EntitiesCompleted)*(1-s.cfg.ShrinkWarn) {
			out[rec.Name] = poller.Shrink{PreviousName: p.Name, PreviousEntities: p.EntitiesCompleted, Entities: rec.EntitiesCompleted}
		}
		prev[key] = rec
	}
	return out
}

func shrinkText(sh poller.Shrink) string {
	return fmt.Sprintf("%.1f%% fewer entities than the previous success (%s)", sh.Percent(), present.Count(sh.PreviousEntities))
}

// glance sums up the newest finished export, and the one under way if any.
func (s *Server) glance(recs []poller.Record, shrinks map[string]poller.Shrink, now time.Time) *glance {
	var g glance
	var last *poller.Record
	for i := range recs {
		rec := &recs[i]
		if exportBadge(*rec).Class == "run" {
			if g.Running == nil && last == nil {
				row := s.row(*rec, now)
				g.Running = &row
			}
			continue
		}
		last = rec
		break
	}
	if last == nil {
		if g.Running == nil {
			return nil
		}
		g.Headline = "No export has finished yet"
		g.Badge = badge{"run", "running"}
		return &g
	}
	b := exportBadge(*last)
	// When it ended: a refusal when it was recorded, an export without an
	// end (a timeout) when the poller decided.
	at := last.EndTime
	switch {
	case last.Refused:
		at = last.Created
	case at.IsZero():
		at = last.Updated
	}
	g.Badge, g.ID = b, opID(last.Name)
	g.Headline = fmt.Sprintf("Last backup: %s %s", b.Text, ago(now, at))
	g.Details = append(g.Details, "finished "+timeIn(at, s.loc(), present.TimeLayout))
	if succeeded(*last) {
		g.Details = append(g.Details, present.Count(last.EntitiesCompleted)+" entities", present.Bytes(last.BytesCompleted))
		if !last.StartTime.IsZero() && !last.EndTime.IsZero() {
			g.Details = append(g.Details, "took "+humanDuration(last.EndTime.Sub(last.StartTime)))
		}
		if p, ok := previousSuccess(recs, *last); ok && p.EntitiesCompleted > 0 {
			change := 100 * float64(last.EntitiesCompleted-p.EntitiesCompleted) / float64(p.EntitiesCompleted)
			g.Details = append(g.Details, fmt.Sprintf("%+.1f%% entities vs the previous success %s", change, ago(now, p.EndTime)))
		}
		if sh, ok := shrinks[last.Name]; ok {
			g.Warning = "Shrink warning: " + shrinkText(sh)
		}
		return &g
	}
	if last.Refused {
		g.Details = append(g.Details, "the Admin API refused to start it")
	}
	if last.ErrorMessage != "" || last.ErrorCode != 0 {
		g.Warning = "Error: " + present.ErrorText(last.Operation)
	}
	for _, rec := range recs {
		if succeeded(rec) {
			g.Details = append(g.Details, fmt.Sprintf("last success %s (%s entities, %s)", ago(now, rec.EndTime), present.Count(rec.EntitiesCompleted), present.Bytes(rec.BytesCompleted)))
			return &g
		}
	}
	g.Details = append(g.Details, "no success in the recent history")
	return &g
}

// previousSuccess is the success before rec of the same project and filter, in recs newest first.
func previousSuccess(recs []poller.Record, rec poller.Record) (poller.Record, bool) {
	seen := false
	for _, r := range recs {
		if r.Name == rec.Name {
			seen = true
			continue
		}
		if seen && succeeded(r) && filterOf(r) == filterOf(rec) {
			return r, true
		}
	}
	return poller.Record{}, false
}

// trend charts the last trendSize successes of the newest success's project
// and filter: a chart mixing filters would show every change of filter as a
// jump in size.
type trend struct {
	Caption string
	Charts  []chart
	Shrinks int
	Table   []trendRow
}

type trendRow struct {
	ID, When, Entities, Bytes, Duration, Shrink string
}

func (s *Server) trend(recs []poller.Record, shrinks map[string]poller.Shrink) *trend {
	var pts []poller.Record // newest first
	key := ""
	for _, rec := range recs {
		if !succeeded(rec) {
			continue
		}
		if key == "" {
			key = filterOf(rec)
		}
		if filterOf(rec) == key && len(pts) < trendSize {
			pts = append(pts, rec)
		}
	}
	if len(pts) == 0 {
		return nil
	}
	loc := s.loc()
	n := len(pts)
	var ents, byts, durs []point
	t := &trend{Caption: fmt.Sprintf("Last %d successful %s of %s (kinds: %s; namespaces: %s)",
		n, plural(n, "export", "exports"), pts[0].Project, filterList(pts[0].Kinds, false), filterList(pts[0].Namespaces, true))}
	for i := n - 1; i >= 0; i-- {
		rec := pts[i]
		x := float64(n - 1 - i)
		when := timeIn(rec.EndTime, loc, listTimeFmt)
		_, shrunk := shrinks[rec.Name]
		var d time.Duration
		if !rec.StartTime.IsZero() && !rec.EndTime.IsZero() {
			d = rec.EndTime.Sub(rec.StartTime)
		}
		label := when
		ents = append(ents, point{X: x, Y: float64(rec.EntitiesCompleted), Label: label + ": " + present.Count(rec.EntitiesCompleted) + " entities", Mark: shrunk})
		byts = append(byts, point{X: x, Y: float64(rec.BytesCompleted), Label: label + ": " + present.Bytes(rec.BytesCompleted)})
		durs = append(durs, point{X: x, Y: d.Seconds(), Label: label + ": " + humanDuration(d)})
		row := trendRow{ID: opID(rec.Name), When: when, Entities: present.Count(rec.EntitiesCompleted), Bytes: present.Bytes(rec.BytesCompleted), Duration: humanDuration(d)}
		if sh, ok := shrinks[rec.Name]; ok {
			row.Shrink = shrinkText(sh)
			ents[len(ents)-1].Label += " — shrink warning: " + row.Shrink
			t.Shrinks++
		}
		t.Table = append(t.Table, row)
	}
	first, last := timeIn(pts[n-1].EndTime, loc, shortTimeFmt), timeIn(pts[0].EndTime, loc, shortTimeFmt)
	xl := [2]string{first, last}
	marks := ""
	if t.Shrinks > 0 {
		marks = fmt.Sprintf("; %d shrink %s marked", t.Shrinks, plural(t.Shrinks, "warning", "warnings"))
	}
	t.Charts = []chart{
		newChart("trend-entities", "Entities exported", fmt.Sprintf("Entities of the last %d successes, %s to %s%s", n, first, last, marks), "successes",
			xl, func(v float64) string { return shortCount(v) }, series{Name: "entities", Class: "s1", Points: ents}),
		newChart("trend-bytes", "Bytes exported", fmt.Sprintf("Bytes of the last %d successes, %s to %s", n, first, last), "successes",
			xl, func(v float64) string { return present.Bytes(int64(v)) }, series{Name: "bytes", Class: "s2", Points: byts}),
		newChart("trend-duration", "Duration", fmt.Sprintf("Duration of the last %d successes, %s to %s", n, first, last), "successes",
			xl, func(v float64) string { return humanDuration(time.Duration(v) * time.Second) }, series{Name: "duration", Class: "s3", Points: durs}),
	}
	return t
}

// Export page

type exportView struct {
	pageView
	Export    exportRow
	Chart     *chart
	Snapshots []snapshotRow
}

type snapshotRow struct {
	Poll                  int
	Time, TimeISO, State  string
	Done                  string
	Entities, Bytes       string
	EntitiesPct, BytesPct string
}

func (s *Server) exportPage(w http.ResponseWriter, r *http.Request) error {
	rec, snaps, err := s.lookup(r.Context(), r)
	if err != nil {
		return err
	}
	loc := s.loc()
	v := exportView{pageView: newPageView("Export " + opID(rec.Name)), Export: s.row(rec, time.Now())}
	for _, sn := range snaps {
		row := snapshotRow{
			Poll: sn.Poll, Time: timeIn(sn.Time, loc, present.TimeLayout), TimeISO: isoTime(sn.Time), State: string(sn.State),
			Done:     "no",
			Entities: countOf(sn.EntitiesCompleted, sn.EntitiesEstimated), Bytes: bytesOf(sn.BytesCompleted, sn.BytesEstimated),
		}
		if sn.Done {
			row.Done = "yes"
		}
		row.EntitiesPct, _ = percent(sn.EntitiesCompleted, sn.EntitiesEstimated)
		row.BytesPct, _ = percent(sn.BytesCompleted, sn.BytesEstimated)
		v.Snapshots = append(v.Snapshots, row)
	}
	v.Chart = progressChart(snaps, loc)
	s.render(w, r, http.StatusOK, "export", v)
	return nil
}

func countOf(completed, estimated int64) string {
	if estimated > 0 {
		return present.Count(completed) + " of " + present.Count(estimated)
	}
	return present.Count(completed)
}

func bytesOf(completed, estimated int64) string {
	if estimated > 0 {
		return present.Bytes(completed) + " of " + present.Bytes(estimated)
	}
	return present.Bytes(completed)
}

// progressChart plots entities and bytes in percent of their estimates
// against time. A snapshot without an estimate has no percentage and is
// left out; completed beyond the estimate goes above 100%.
func progressChart(snaps []poller.Snapshot, loc *time.Location) *chart {
	if len(snaps) == 0 {
		return nil
	}
	t0 := snaps[0].Time
	var ents, byts []point
	for _, sn := range snaps {
		x := sn.Time.Sub(t0).Seconds()
		when := timeIn(sn.Time, loc, "15:04:05")
		if sn.EntitiesEstimated > 0 {
			p := 100 * float64(sn.EntitiesCompleted) / float64(sn.EntitiesEstimated)
			ents = append(ents, point{X: x, Y: p, Label: fmt.Sprintf("poll %d at %s: entities %.0f%%", sn.Poll, when, p)})
		}
		if sn.BytesEstimated > 0 {
			p := 100 * float64(sn.BytesCompleted) / float64(sn.BytesEstimated)
			byts = append(byts, point{X: x, Y: p, Label: fmt.Sprintf("poll %d at %s: bytes %.0f%%", sn.Poll, when, p)})
		}
	}
	if len(ents) == 0 && len(byts) == 0 {
		return nil
	}
	last := snaps[len(snaps)-1].Time
	c := newChart("progress", "Progress over time",
		fmt.Sprintf("Entities and bytes exported, in percent of the estimate, from %s to %s (%s)",
			timeIn(t0, loc, present.TimeLayout), timeIn(last, loc, present.TimeLayout), humanDuration(last.Sub(t0))), "time",
		[2]string{timeIn(t0, loc, "15:04"), "+" + humanDuration(last.Sub(t0))},
		func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + "%" },
		series{Name: "entities %", Class: "s1", Points: ents}, series{Name: "bytes %", Class: "s2", Points: byts})
	// The axis spans the whole history, snapshots without an estimate too,
	// as its labels say.
	c.xRange(0, last.Sub(t0).Seconds())
	c.minYMax(100)
	return &c
}

// Charts: inline SVG laid out here, drawn by the templates.

const (
	chartW, chartH         = 320.0, 170.0
	padL, padR, padT, padB = 58.0, 12.0, 12.0, 30.0
	plotW, plotH           = chartW - padL - padR, chartH - padT - padB
	markSize               = 5.0
)

type point struct {
	X, Y  float64
	Label string
	Mark  bool // a shrink warning
}

type series struct {
	Name, Class string
	Points      []point
}

// chart is a laid-out line chart: coordinates in the SVG's viewBox.
type chart struct {
	ID, Title, Desc string
	W, H            float64
	Left, Right     float64
	Top, Bottom     float64
	XLabels         [2]string
	XTitle          string
	YLabelX         float64
	XLabelY         float64
	XTitleX         float64
	YTicks          []tick
	Lines           []line
	Marks           int

	series []series
	yfmt   func(float64) string
	xMin   float64
	xMax   float64
	yMax   float64
}

type tick struct {
	Y     float64
	Label string
}

type line struct {
	Name, Class string
	Path        string
	Dots        []dot
}

type dot struct {
	X, Y  float64
	Label string
	Mark  bool
	// Tri is the triangle drawn around a marked point.
	Tri string
}

func newChart(id, title, desc, xTitle string, xLabels [2]string, yfmt func(float64) string, ss ...series) chart {
	c := chart{ID: id, Title: title, Desc: desc, W: chartW, H: chartH, Left: padL, Right: chartW - padR, Top: padT, Bottom: chartH - padB,
		XLabels: xLabels, XTitle: xTitle, YLabelX: padL - 4, XLabelY: chartH - padB + 16, XTitleX: padL + plotW/2,
		series: ss, yfmt: yfmt, xMin: math.Inf(1), xMax: math.Inf(-1)}
	for _, s := range ss {
		for _, p := range s.Points {
			c.xMin, c.xMax, c.yMax = min(c.xMin, p.X), max(c.xMax, p.X), max(c.yMax, p.Y)
		}
	}
	c.layout()
	return c
}

// xRange sets the x axis to span lo to hi.
func (c *chart) xRange(lo, hi float64) {
	c.xMin, c.xMax = lo, hi
	c.layout()
}

// minYMax makes the y axis reach at least v (100% on a progress chart).
func (c *chart) minYMax(v float64) {
	if c.yMax < v {
		c.yMax = v
		c.layout()
	}
}

func (c *chart) layout() {
	top := niceCeil(c.yMax)
	c.YTicks = nil
	for i := 0; i <= 2; i++ {
		v := top * float64(i) / 2
		c.YTicks = append(c.YTicks, tick{Y: c.y(v, top), Label: c.yfmt(v)})
	}
	c.Lines, c.Marks = nil, 0
	for _, s := range c.series {
		l := line{Name: s.Name, Class: s.Class}
		var path strings.Builder
		for i, p := range s.Points {
			d := dot{X: round1(c.x(p.X)), Y: round1(c.y(p.Y, top)), Label: p.Label, Mark: p.Mark}
			if p.Mark {
				c.Marks++
				d.Tri = fmt.Sprintf("%.1f,%.1f %.1f,%.1f %.1f,%.1f", d.X, d.Y-2*markSize, d.X-markSize*1.7, d.Y+markSize, d.X+markSize*1.7, d.Y+markSize)
			}
			if i == 0 {
				fmt.Fprintf(&path, "M%.1f %.1f", d.X, d.Y)
			} else {
				fmt.Fprintf(&path, " L%.1f %.1f", d.X, d.Y)
			}
			l.Dots = append(l.Dots, d)
		}
		l.Path = path.String()
		c.Lines = append(c.Lines, l)
	}
}

func (c *chart) x(v float64) float64 {
	if c.xMax <= c.xMin {
		return padL + plotW/2 // one point: in the middle
	}
	return padL + plotW*(v-c.xMin)/(c.xMax-c.xMin)
}

func (c *chart) y(v, top float64) float64 {
	if top <= 0 {
		return padT + plotH
	}
	return padT + plotH*(1-v/top)
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// niceCeil is the smallest 1, 2, 2.5 or 5 times a power of ten at or above v.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// Human units

// shortCount writes a count for an axis: 21.9M.
func shortCount(v float64) string {
	switch {
	case v >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', -1, 64) + "G"
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// humanDuration writes d to the second, or to the minute past an hour.
func humanDuration(d time.Duration) string {
	if d >= time.Hour {
		d = d.Round(time.Minute)
		return strings.TrimSuffix(d.String(), "0s")
	}
	return d.Round(time.Second).String()
}

// ago says how long before now t was, in the largest whole unit.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case t.IsZero():
		return "at an unknown time"
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		m := int(d / time.Minute)
		return fmt.Sprintf("%d %s ago", m, plural(m, "minute", "minutes"))
	case d < 48*time.Hour:
		h := int(d / time.Hour)
		return fmt.Sprintf("%d %s ago", h, plural(h, "hour", "hours"))
	}
	days := int(d / (24 * time.Hour))
	return fmt.Sprintf("%d days ago", days)
}

func timeIn(t time.Time, loc *time.Location, layout string) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(loc).Format(layout)
}

func isoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// filterList writes an entity filter as reports do: empty means all.
func filterList(values []string, namespaces bool) string {
	if len(values) == 0 {
		return "all"
	}
	out := make([]string, len(values))
	for i, v := range values {
		if namespaces && v == "" {
			v = "(default)"
		}
		out[i] = v
	}
	return strings.Join(out, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
