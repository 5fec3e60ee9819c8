package server

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// Records is the subset of *store.Store that the status page and the JSON
// API read.
type Records interface {
	// ListPage returns up to limit records newest first from cursor, and the
	// next page's cursor ("" after the last page). A cursor it did not
	// return is an error wrapping store.ErrInvalidCursor.
	ListPage(ctx context.Context, limit int, cursor string) ([]poller.Record, string, error)
	// ListTargetPage is ListPage of one target's records ("" : every
	// target's).
	ListTargetPage(ctx context.Context, target string, limit int, cursor string) ([]poller.Record, string, error)
	// Get returns one record, or an error wrapping poller.ErrNotFound.
	Get(ctx context.Context, name string) (poller.Record, error)
	// Snapshots returns an operation's history, oldest first.
	Snapshots(ctx context.Context, name string) ([]poller.Snapshot, error)
}

// The page sizes. The status page reads further back than it lists, up to
// maxScan records, to find trendSize successes of the charted filter and
// each listed success's predecessor.
const (
	recentSize  = 50
	trendSize   = 30
	scanPage    = 100
	maxScan     = 500
	apiLimit    = 20
	apiLimitMax = 100
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
	s.mux.Handle("GET /targets/{name}", s.page(s.targetPage))
	s.mux.Handle("GET /api/targets", s.handle(s.apiTargets))
	s.mux.Handle("GET /api/doctor", s.handle(s.apiDoctor))
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

// opIDRE is the id of an operation, the last segment of its name.
var opIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,500}$`)

// namesOf turns the {id} of a path into the operation names it can be in
// the configured projects and databases: those of ?target=NAME's database
// when the request names a target, of every target's otherwise; 400 when it
// cannot be an operation id. The message quotes the id once, bounded: it is
// logged beside the path it came from, which can be of any size.
func (s *Server) namesOf(r *http.Request) ([]string, error) {
	id := r.PathValue("id")
	if !opIDRE.MatchString(id) {
		return nil, badRequest("export id %q: not an operation id (1 to 500 letters, digits, - and _)", poller.BoundText(id, maxQuoted))
	}
	q := r.URL.Query()
	targets := s.targets()
	if q.Has("target") && q.Get("target") != "" {
		t, err := s.target(q.Get("target"), true)
		if err != nil {
			return nil, err
		}
		targets = []poller.Target{t}
	} else if s.cfg.Defaults.Project != "" {
		targets = append(targets, poller.Target{Project: s.cfg.Defaults.Project, Database: s.cfg.Defaults.Database})
	}
	var names []string
	add := func(name string) {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	for _, t := range targets {
		project, database := t.Project, t.Database
		if t.Export != nil {
			project, database = cmp.Or(t.Export.Project, project), cmp.Or(t.Export.Database, database)
		}
		if project == "" {
			continue
		}
		if poller.IsDefaultDatabase(database) {
			add("projects/" + project + "/operations/" + id)
			database = poller.DefaultDatabase // exported through the Firestore Admin API
		}
		add("projects/" + project + "/databases/" + database + "/operations/" + id)
	}
	return names, nil
}

// maxQuoted bounds a value from the request quoted in an error message.
const maxQuoted = 256

// lookup reads one record and its history; 404 when it is not recorded.
func (s *Server) lookup(ctx context.Context, r *http.Request) (poller.Record, []poller.Snapshot, error) {
	recs, err := s.records()
	if err != nil {
		return poller.Record{}, nil, err
	}
	names, err := s.namesOf(r)
	if err != nil {
		return poller.Record{}, nil, err
	}
	for _, name := range names {
		rec, err := recs.Get(ctx, name)
		if errors.Is(err, poller.ErrNotFound) {
			continue
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
	name := r.PathValue("id")
	if len(names) > 0 {
		name = names[0]
	}
	return poller.Record{}, nil, &httpError{status: http.StatusNotFound, msg: fmt.Sprintf("export %s not found: dsexport has no record of it", name)}
}

// exportLink is the path of rec's page: with its target when it has one, so
// that the page finds it in the target's database.
func (s *Server) exportLink(rec poller.Record) string {
	return s.operationLink(rec.Name, rec.Target)
}

// operationLink is the path of the page of the export operation name of
// target ("" : none).
func (s *Server) operationLink(name, target string) string {
	link := "/exports/" + opID(name)
	if target != "" {
		if _, ok := s.targetOf(target); ok {
			link += "?target=" + url.QueryEscape(target)
		}
	}
	return link
}
