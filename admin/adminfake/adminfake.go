// Package adminfake is an in-memory Datastore Admin API for tests: it speaks
// the REST wire format of projects.export and projects.operations.get over
// real HTTP, and plays each operation through a script of answers.
package adminfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsexport/dsexport/internal/faults"
)

// Step is one answer of an operation's script: an operation snapshot, or an
// HTTP error in Google's JSON error format.
type Step struct {
	state      string
	done       bool
	entities   [2]int64 // completed, estimated
	bytes      [2]int64
	errCode    int
	errMessage string
	// httpStatus, when set, makes the GET fail with that status instead.
	httpStatus int
	retryAfter string
	// body, when set with httpStatus, is the answer's body as it is
	// instead of Google's error format.
	body string
	// name, when set, is the name the answer gives instead of the one read.
	name string
	// delay holds the answer back, as a slow or hung API does.
	delay time.Duration
	// asOther, with name, answers as the operation name when the fake
	// knows it (AnswerAs).
	asOther bool
	// then, when set, replaces this step once until has passed since the
	// export call (Until).
	until time.Duration
	then  *Step
}

// Running is a snapshot of a running operation in state (e.g. "PROCESSING").
func Running(state string, entitiesDone, entitiesEstimated, bytesDone, bytesEstimated int64) Step {
	return Step{state: state, entities: [2]int64{entitiesDone, entitiesEstimated}, bytes: [2]int64{bytesDone, bytesEstimated}}
}

// Successful is a finished export with its output URL set.
func Successful(entities, bytes int64) Step {
	return Step{state: "SUCCESSFUL", done: true, entities: [2]int64{entities, entities}, bytes: [2]int64{bytes, bytes}}
}

// Failed is a finished export with a google.rpc error.
func Failed(code int, message string) Step {
	return Step{state: "FAILED", done: true, errCode: code, errMessage: message}
}

// Cancelled is an export cancelled by an operator (google.rpc code 1).
func Cancelled() Step {
	return Step{state: "CANCELLED", done: true, errCode: 1, errMessage: "The operation was cancelled."}
}

// DoneIn is a finished operation in an arbitrary state with neither response nor error.
func DoneIn(state string) Step { return Step{state: state, done: true} }

// HTTPError makes the GET answer status with Google's error body; retryAfter
// (seconds) is sent as Retry-After when not empty.
func HTTPError(status int, retryAfter string) Step {
	return Step{httpStatus: status, retryAfter: retryAfter}
}

// HTTPBody makes the GET answer status with body as it is (as text/html),
// as a proxy's error page or a broken answer would be.
func HTTPBody(status int, body string) Step {
	return Step{httpStatus: status, body: body}
}

// Named is step answered under name instead of the operation read (another
// id, another project), as a broken or hostile API might answer.
func Named(name string, step Step) Step {
	step.name = name
	return step
}

// Slow is step answered after delay, or never if the client gives up first.
func Slow(delay time.Duration, step Step) Step {
	step.delay = delay
	return step
}

// AnswerAs is Named, except that an operation the fake knows answers as
// itself (its project, filter and prefix), as an answer mixed up with
// another operation's would; any other name (one of another project) is
// the operation asked for under that name, as with Named.
func AnswerAs(name string, step Step) Step {
	step = Named(name, step)
	step.asOther = true
	return step
}

// Until answers running until d has passed since the export call, and then
// from then on: an operation that ends at a time of its own, however often
// it is read. As the last step of a script it ends the operation.
func Until(d time.Duration, running, then Step) Step {
	running.until, running.then = d, &then
	return running
}

// ExportCall is one projects.export request as the fake received it.
type ExportCall struct {
	Project         string
	OutputURLPrefix string            `json:"outputUrlPrefix"`
	Labels          map[string]string `json:"labels"`
	EntityFilter    struct {
		Kinds        []string `json:"kinds"`
		NamespaceIds []string `json:"namespaceIds"`
	} `json:"entityFilter"`
}

type operation struct {
	name   string
	call   ExportCall
	start  time.Time
	script []Step
	next   int
	gets   int
	// created is when the export call was made (start is the date the
	// answers show); doneAt is when the operation ended (DoneAt).
	created time.Time
	doneAt  time.Time
}

// Server is the fake Admin API.
type Server struct {
	srv *httptest.Server

	mu         sync.Mutex
	ops        map[string]*operation
	order      []string
	exports    []ExportCall
	nextScript []Step
	exportErr  *Step
	// scriptFor, when set, picks each export's script from its call
	// (ScriptEach); it wins over nextScript.
	scriptFor func(ExportCall) []Step
	// exportDone makes the export call answer as the Datastore emulator
	// does: done at once, without a name (AnswerExportsDone).
	exportDone *Step
	seq        int
	onGet      func(name string)
	// faults injects random failures (InjectFaults).
	faults faults.Injector
}

// InjectFaults makes each call (export or get) fail with probability rate,
// half of them 503 and half 429, drawn from a generator seeded with seed.
func (s *Server) InjectFaults(rate float64, seed uint64) { s.faults.Set(rate, seed, 0xfa17) }

// Injected returns how many failures InjectFaults caused so far.
func (s *Server) Injected() int { return s.faults.Injected() }

// fault draws whether this call fails, and with which status.
func (s *Server) fault() int {
	fail, first := s.faults.Draw()
	switch {
	case !fail:
		return 0
	case first:
		return http.StatusServiceUnavailable
	}
	return http.StatusTooManyRequests
}

// OnGet calls f with the operation name at each GET, before it is answered.
func (s *Server) OnGet(f func(name string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onGet = f
}

// New starts a fake Admin API, closed when t ends. Until told otherwise an
// export runs one poll and succeeds with 1,000 entities.
func New(t testing.TB) *Server {
	s := &Server{ops: map[string]*operation{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the base URL to give the Admin client (DSEXPORT_ADMIN_ENDPOINT).
func (s *Server) URL() string { return s.srv.URL + "/" }

// Script sets the answers of the next exports' GETs, one per poll; the
// last step repeats. The export call itself answers INITIALIZING.
func (s *Server) Script(steps ...Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextScript = steps
}

// ScriptEach sets the script of each later export from its call, so that
// exports started concurrently each get their own (Script is one script for
// whichever export comes next). A nil or empty script is the default one.
func (s *Server) ScriptEach(f func(call ExportCall) []Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scriptFor = f
}

// RefuseExports makes every export call fail with status and message, the
// way the API refuses a start (403 on the bucket, 429 over quota).
func (s *Server) RefuseExports(status int, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exportErr = &Step{httpStatus: status, errMessage: message}
}

// AnswerExportsDone makes every export call answer as the Datastore
// emulator does: synchronously, done with step's outcome, and without an
// operation name, so there is no operation to GET afterwards.
func (s *Server) AnswerExportsDone(step Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exportDone = &step
}

// AddOperation registers an operation started elsewhere and returns its name.
func (s *Server) AddOperation(project string, steps ...Step) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addLocked(ExportCall{Project: project, OutputURLPrefix: "gs://fake-bucket/exports"}, steps)
}

func (s *Server) addLocked(call ExportCall, steps []Step) string {
	s.seq++
	name := fmt.Sprintf("projects/%s/operations/ASAfake%06d", call.Project, s.seq)
	if len(steps) == 0 {
		steps = []Step{Running("PROCESSING", 500, 1000, 5000, 10000), Successful(1000, 10000)}
	}
	s.ops[name] = &operation{name: name, call: call, start: time.Date(2026, 11, 23, 3, 0, 4, 837e6, time.UTC), script: steps, created: time.Now()}
	s.order = append(s.order, name)
	return name
}

// Exports returns the export calls received so far.
func (s *Server) Exports() []ExportCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ExportCall(nil), s.exports...)
}

// Names returns the names of the operations the fake knows, oldest first.
func (s *Server) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.order...)
}

// Call returns the export call that started the operation name.
func (s *Server) Call(name string) (ExportCall, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op, ok := s.ops[name]; ok {
		return op.call, true
	}
	return ExportCall{}, false
}

// Gets returns how many GETs the operation name received.
func (s *Server) Gets(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op, ok := s.ops[name]; ok {
		return op.gets
	}
	return 0
}

// DoneAt is when the operation name ended: when a GET first answered it
// done under its own name, or for an Until step the moment its time ran
// out. It is zero while no GET has answered it done.
func (s *Server) DoneAt(name string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op, ok := s.ops[name]; ok {
		return op.doneAt
	}
	return time.Time{}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if status := s.fault(); status != 0 {
		writeError(w, status, "injected fault")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(path, "projects/") && strings.HasSuffix(path, ":export"):
		s.export(w, r, strings.TrimSuffix(strings.TrimPrefix(path, "projects/"), ":export"))
	case r.Method == http.MethodGet && strings.HasPrefix(path, "projects/") && strings.Contains(path, "/operations/"):
		s.get(w, r, path)
	default:
		writeError(w, http.StatusNotFound, "adminfake does not support "+r.Method+" "+r.URL.Path)
	}
}

func (s *Server) export(w http.ResponseWriter, r *http.Request, project string) {
	var call ExportCall
	if err := json.NewDecoder(r.Body).Decode(&call); err != nil {
		writeError(w, http.StatusBadRequest, "Invalid JSON payload received. "+err.Error())
		return
	}
	call.Project = project
	s.mu.Lock()
	s.exports = append(s.exports, call)
	if e := s.exportErr; e != nil {
		s.mu.Unlock()
		writeError(w, e.httpStatus, e.errMessage)
		return
	}
	if d := s.exportDone; d != nil {
		op := &operation{call: call, start: time.Now().UTC()}
		body := op.render(*d)
		s.mu.Unlock()
		delete(body, "name")
		writeJSON(w, http.StatusOK, body)
		return
	}
	script := s.nextScript
	if s.scriptFor != nil {
		script = s.scriptFor(call)
	}
	name := s.addLocked(call, script)
	op := s.ops[name]
	body := op.render(Step{state: "INITIALIZING"})
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, name string) {
	s.mu.Lock()
	op, ok := s.ops[name]
	if !ok {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Operation not found: "+name)
		return
	}
	op.gets++
	step := op.script[min(op.next, len(op.script)-1)]
	op.next++
	var endedAt time.Time
	for step.then != nil && time.Since(op.created) >= step.until {
		endedAt = op.created.Add(step.until)
		step = *step.then
	}
	onGet := s.onGet
	s.mu.Unlock()
	if onGet != nil {
		onGet(name)
	}
	if step.delay > 0 {
		select {
		case <-time.After(step.delay):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case step.httpStatus != 0 && step.body != "":
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(step.httpStatus)
		io.WriteString(w, step.body)
		return
	case step.httpStatus != 0:
		if step.retryAfter != "" {
			w.Header().Set("Retry-After", step.retryAfter)
		}
		writeError(w, step.httpStatus, http.StatusText(step.httpStatus))
		return
	}
	body := op.render(step)
	if step.name != "" {
		if step.asOther {
			s.mu.Lock()
			other, known := s.ops[step.name]
			s.mu.Unlock()
			if known {
				body = other.render(step)
			}
		}
		body["name"] = step.name
	} else if step.done {
		s.mu.Lock()
		if op.doneAt.IsZero() {
			if endedAt.IsZero() {
				endedAt = time.Now()
			}
			op.doneAt = endedAt
		}
		s.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, body)
}

// render builds the operation exactly as the REST API sends it: done omitted
// while running, int64 progress as strings, labels and filter in metadata.
func (op *operation) render(st Step) map[string]any {
	common := map[string]any{
		"startTime":     op.start.Format(time.RFC3339Nano),
		"operationType": "EXPORT_ENTITIES",
		"state":         st.state,
	}
	if len(op.call.Labels) > 0 {
		common["labels"] = op.call.Labels
	}
	if st.done {
		common["endTime"] = op.start.Add(53 * time.Minute).Format(time.RFC3339Nano)
	}
	filter := map[string]any{}
	if len(op.call.EntityFilter.Kinds) > 0 {
		filter["kinds"] = op.call.EntityFilter.Kinds
	}
	if len(op.call.EntityFilter.NamespaceIds) > 0 {
		filter["namespaceIds"] = op.call.EntityFilter.NamespaceIds
	}
	body := map[string]any{
		"name": op.name,
		"metadata": map[string]any{
			"@type":            "type.googleapis.com/google.datastore.admin.v1.ExportEntitiesMetadata",
			"common":           common,
			"progressEntities": progress(st.entities),
			"progressBytes":    progress(st.bytes),
			"entityFilter":     filter,
			"outputUrlPrefix":  op.call.OutputURLPrefix,
		},
	}
	if st.done {
		body["done"] = true
		if st.errCode != 0 || st.errMessage != "" {
			body["error"] = map[string]any{"code": st.errCode, "message": st.errMessage}
		} else if st.state == "SUCCESSFUL" {
			stamp := op.start.Format("2006-01-02T15:04:05") + "_43519"
			body["response"] = map[string]any{
				"@type":     "type.googleapis.com/google.datastore.admin.v1.ExportEntitiesResponse",
				"outputUrl": op.call.OutputURLPrefix + "/" + stamp + "/" + stamp + ".overall_export_metadata",
			}
		}
	}
	return body
}

func progress(p [2]int64) map[string]string {
	return map[string]string{"workCompleted": strconv.FormatInt(p[0], 10), "workEstimated": strconv.FormatInt(p[1], 10)}
}

var statusNames = map[int]string{
	400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS",
	429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}

// writeError answers in Google's JSON error format, which googleapi.Error decodes.
func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code": status, "message": message, "status": statusNames[status],
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
