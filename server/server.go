// Package server is dsexport's HTTP service: the cron and manual export
// triggers, the poll task endpoint, and App Engine's lifecycle routes, all
// plain net/http handlers that run unchanged locally, on App Engine and on
// Cloud Run.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dsexport/dsexport/internal/cloudlog"
	"github.com/dsexport/dsexport/poller"
)

// Poller is the subset of *poller.Poller the handlers call. The poller
// decides what happens next and hands operations over itself (the first
// poll of a start, a continuation, the sweep's resumes); the handlers only
// map its results to HTTP statuses.
type Poller interface {
	Start(ctx context.Context, req poller.ExportRequest) (poller.StartResult, error)
	Poll(ctx context.Context, name string) (poller.PollResult, error)
	Sweep(ctx context.Context, targets []poller.Target) (poller.SweepResult, error)
}

// Config holds the server's dependencies and the targets it looks after.
type Config struct {
	Poller Poller
	Logger *slog.Logger
	// Targets are the configured targets: GET /cron/export?target=NAME
	// starts one's Export, POST /export {"target": NAME} takes it as its
	// base, the sweep watches them all, and the status page has a row and
	// a page for each. With none, the one target is Defaults' export under
	// the name "".
	Targets []poller.Target
	// Defaults is the export of the single target when Targets is empty.
	Defaults poller.ExportRequest
	// Backups is the history of the targets' managed backups for the
	// status page and the API (nil: none are shown).
	Backups BackupHistory
	// Verifications and Drills are the targets' content verifications and
	// restore drills for the status page and the API (nil: none are shown).
	Verifications poller.VerificationStore
	Drills        poller.DrillStore
	// Auth decides who may call each route; its zero value allows loopback
	// clients only.
	Auth AuthConfig

	// Doctor runs the preflight checks for GET /api/doctor (nil: 503).
	Doctor Doctor

	Records    Records        // the store, for the status page and the API (nil: those routes answer 503)
	Location   *time.Location // time zone of the status page (DSEXPORT_TIMEZONE)
	ShrinkWarn float64        // fraction below the previous success that the status page marks as a shrink (DSEXPORT_SHRINK_WARN; 0: none)
}

// Server routes dsexport's HTTP requests.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	handler http.Handler
}

// maxBody bounds request bodies: a trigger or a poll task is a few hundred bytes.
const maxBody = 64 << 10

// New builds the server and its routes.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.mux.Handle("GET /cron/export", s.handle(s.cronExport))
	s.mux.Handle("POST /export", s.handle(s.manualExport))
	s.mux.Handle("POST /tasks/poll", s.handle(s.poll))
	s.mux.Handle("GET /cron/sweep", s.handle(s.sweep))
	s.mux.HandleFunc("GET /_ah/start", noContent)
	s.mux.HandleFunc("GET /_ah/stop", noContent)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	s.routePages()
	// Every route goes through authentication: none can be left out. The
	// trace goes into the context first, so refusals are logged with it.
	if cfg.Auth.Logger == nil {
		cfg.Auth.Logger = cfg.Logger
	}
	s.handler = cloudlog.Middleware(Authenticate(cfg.Auth, s.mux))
	return s
}

// ServeHTTP serves the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func noContent(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }

// httpError is an error with the status it answers and a message for the caller.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// handle adapts a handler that returns an error: an httpError answers its
// status and message, anything else 500.
func (s *Server) handle(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		err := h(w, r)
		if err == nil {
			return
		}
		status, msg := http.StatusInternalServerError, err.Error()
		var he *httpError
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &he):
			status = he.status
		case errors.As(err, &mbe):
			status, msg = http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", maxBody)
		}
		level := slog.LevelWarn
		if status >= 500 {
			level = slog.LevelError
		}
		s.cfg.Logger.Log(r.Context(), level, "request failed", "method", r.Method, "path", r.URL.Path, "status", status, "caller", CallerFrom(r.Context()), "err", err)
		writeJSON(w, status, map[string]string{"error": msg})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) cronExport(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	t, err := s.target(q.Get("target"), q.Has("target"))
	if err != nil {
		return err
	}
	req, err := exportOf(t)
	if err != nil {
		return err
	}
	req.Trigger = poller.TriggerCron
	return s.startExport(w, r, req)
}

// exportBody is the manual trigger's JSON body; every field is optional.
type exportBody struct {
	// Target names the configured target whose export is the base of the
	// other fields (optional with one target).
	Target          *string  `json:"target"`
	OutputURLPrefix *string  `json:"outputUrlPrefix"`
	Kinds           []string `json:"kinds"`
	Namespaces      []string `json:"namespaces"`
	// Force starts even while an export of the same database and filter runs.
	Force bool `json:"force"`
}

func (s *Server) manualExport(w http.ResponseWriter, r *http.Request) error {
	var body exportBody
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	var name string
	if body.Target != nil {
		name = *body.Target
	}
	t, err := s.target(name, body.Target != nil)
	if err != nil {
		return err
	}
	base, err := exportOf(t)
	if err != nil {
		return err
	}
	req := base
	req.Trigger = poller.TriggerManual
	req.Force = body.Force
	if body.OutputURLPrefix != nil {
		req.OutputURLPrefix = *body.OutputURLPrefix
	}
	if body.Kinds != nil {
		req.Kinds = body.Kinds
	}
	if body.Namespaces != nil {
		req.Namespaces = body.Namespaces
	}
	if err := poller.ValidateExport(req); err != nil {
		return badRequest("%v", err)
	}
	// Only the configured bucket: an export to a bucket of the caller's
	// choosing would hand them a copy of the database.
	if got, want := bucketOf(req.OutputURLPrefix), bucketOf(base.OutputURLPrefix); got != want {
		return badRequest("outputUrlPrefix: %q is not in the configured bucket gs://%s", req.OutputURLPrefix, want)
	}
	return s.startExport(w, r, req)
}

// bucketOf is the bucket of a gs:// prefix, or "" for anything else.
func bucketOf(prefix string) string {
	rest, ok := strings.CutPrefix(prefix, "gs://")
	if !ok {
		return ""
	}
	bucket, _, _ := strings.Cut(rest, "/")
	return bucket
}

// decodeJSON reads an optional JSON object body strictly: unknown fields and
// trailing data are errors naming what was wrong. The content type is not
// checked: curl -d and Cloud Scheduler send JSON under other types.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var te *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return nil // An empty body takes every default.
		case errors.As(err, &mbe):
			return err
		case errors.As(err, &te) && te.Field == "":
			return badRequest("body must be a JSON object, not %s", te.Value)
		case errors.As(err, &te):
			return badRequest("field %q must be %s, not %s", te.Field, jsonType(te.Type.String()), te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return badRequest("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return badRequest("malformed JSON body: %v", err)
	}
	// More() misses a stray } or ]; only a second Decode meeting EOF proves the end.
	if err := dec.Decode(&json.RawMessage{}); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("malformed JSON body: data after the object")
	}
	return nil
}

func jsonType(goType string) string {
	switch goType {
	case "string", "*string":
		return "a string"
	case "[]string":
		return "an array of strings"
	case "bool":
		return "a boolean"
	}
	return goType
}

// startRetryAfter is the Retry-After, in seconds, of a 409 for a start
// another request is making.
const startRetryAfter = 5

// startExport starts req and answers with what the poller did: 202 with the
// started operation (handed to a poller before the answer: on App Engine
// and Cloud Run nothing may run after it), 200 for a repeated cron request,
// 409 while an export of the filter runs, 502 when the Admin API refused.
func (s *Server) startExport(w http.ResponseWriter, r *http.Request, req poller.ExportRequest) error {
	res, err := s.cfg.Poller.Start(r.Context(), req)
	switch {
	case errors.Is(err, poller.ErrStartInProgress):
		// Another request holds the filter's reservation while it starts
		// the same export, which takes seconds (at most the reservation,
		// if it died): the client may come back shortly.
		w.Header().Set("Retry-After", strconv.Itoa(startRetryAfter))
		return &httpError{status: http.StatusConflict, msg: err.Error() + "; try again in a few seconds"}
	case errors.Is(err, poller.ErrBusy):
		w.Header().Set("Retry-After", "1")
		return &httpError{status: http.StatusServiceUnavailable, msg: err.Error()}
	case errors.Is(err, poller.ErrRateLimited):
		w.Header().Set("Retry-After", strconv.Itoa(60-time.Now().Second()))
		return &httpError{status: http.StatusTooManyRequests, msg: err.Error()}
	case err != nil:
		return err
	}
	rec := res.Record
	switch res.Status {
	case poller.Duplicate:
		// App Engine retried the cron request: the export it started goes
		// on, and a 2xx stops the retries.
		writeJSON(w, http.StatusOK, rec)
	case poller.Running:
		writeJSON(w, http.StatusConflict, map[string]string{
			"error": "an export of the same database and filter is running: " + rec.Name + `; send "force": true to start another`,
			"name":  rec.Name,
		})
	case poller.Refused:
		// The Admin API refused or could not be reached: its message, as a gateway error.
		return &httpError{status: http.StatusBadGateway, msg: rec.ErrorMessage}
	default:
		s.cfg.Logger.InfoContext(r.Context(), "export triggered", "operation", rec.Name, "trigger", req.Trigger,
			"followed", res.Followed, "caller", CallerFrom(r.Context()))
		writeJSON(w, http.StatusAccepted, rec)
	}
	return nil
}

// pollBody is the poll task's body: {"name": "projects/P/operations/ID"}, or the same as a form.
type pollBody struct {
	Name string `json:"name"`
}

func (s *Server) poll(w http.ResponseWriter, r *http.Request) error {
	var body pollBody
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/x-www-form-urlencoded", "multipart/form-data":
		var err error
		if mt == "multipart/form-data" {
			err = r.ParseMultipartForm(maxBody)
		} else {
			err = r.ParseForm()
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return err
			}
			return badRequest("malformed form body: %v", err)
		}
		body.Name = r.PostForm.Get("name")
	default:
		if err := decodeJSON(r, &body); err != nil {
			return err
		}
	}
	if body.Name == "" {
		return badRequest("field \"name\" is required: the operation name projects/{project}/operations/{id}")
	}
	project, database, err := poller.ParseNameIn(body.Name)
	if err != nil {
		return badRequest("field \"name\": %v", err)
	}
	// dsexport follows the exports of its own databases, nothing else its
	// identity might be allowed to read: not another project's, nor another
	// database's of a configured project. A Datastore Admin API name (no
	// database) is of (default).
	if scope, scopes := poller.Scope(project, database), s.scopes(); !slices.Contains(scopes, scope) {
		return badRequest("field \"name\": %s is not an operation of a configured database: %s is not one of %s", body.Name, scope, poller.BoundText(strings.Join(scopes, ", "), maxList))
	}
	// Ended, continued (the poller enqueued the continuation before
	// returning) and held (a duplicate delivery: the lease holder follows
	// the operation) all end this task with a 2xx.
	res, err := s.cfg.Poller.Poll(r.Context(), body.Name)
	switch {
	case err != nil && r.Context().Err() != nil:
		// Stopping (SIGTERM): answer so the queue tries this task again,
		// on this instance's successor.
		return &httpError{status: http.StatusServiceUnavailable, msg: fmt.Sprintf("stopping after %d polls of %s; try again", res.Record.Polls, body.Name)}
	case errors.Is(err, poller.ErrOperationGone) && res.Record.Name == "":
		return &httpError{status: http.StatusNotFound, msg: fmt.Sprintf("operation %s not found: %v", body.Name, err)}
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, res.Record)
	return nil
}

// sweep resumes orphaned polls, retries pending reports and raises the
// staleness alarm. Its own errors answer 500 so cron logs them; what it did
// is in the body either way.
func (s *Server) sweep(w http.ResponseWriter, r *http.Request) error {
	res, err := s.cfg.Poller.Sweep(r.Context(), s.targets())
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "sweep incomplete", "err", err, "result", res)
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error(), "result": res})
		return nil
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
