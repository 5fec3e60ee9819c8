// Package firestorefake is an in-memory Firestore Admin API for tests: it
// speaks the REST wire format (camelCase JSON, int64s as strings, Google's
// JSON errors) of projects.databases.exportDocuments and its operations,
// projects.databases.get, projects.databases.backupSchedules.list,
// projects.locations.backups.list, and a restore drill's
// projects.databases.create, projects.databases.delete and
// projects.databases.importDocuments over real HTTP, plays each export
// (and import, and creation) through a script of answers, and records and
// counts every call.
package firestorefake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsexport/dsexport/internal/faults"
	"github.com/dsexport/dsexport/poller"
)

// Method names one call of the API, as Calls counts them.
type Method string

// The methods the fake serves.
const (
	ExportDocuments     Method = "exportDocuments"
	GetOperation        Method = "operations.get"
	GetDatabase         Method = "databases.get"
	ListBackupSchedules Method = "backupSchedules.list"
	ListBackups         Method = "backups.list"
	CreateDatabase      Method = "databases.create"
	DeleteDatabase      Method = "databases.delete"
	ImportDocuments     Method = "importDocuments"
)

// Step is one answer of an export operation's script: a snapshot of the
// operation, or an HTTP failure.
type Step struct {
	state      string
	done       bool
	docs       [2]int64 // completed, estimated
	bytes      [2]int64
	errCode    int
	errMessage string
	answer     Answer // an HTTP failure instead, when its Status is set
	delay      time.Duration
	until      time.Duration
	then       *Step
}

// Running is a running operation in state ("PROCESSING") with its
// progress; a zero count is left out of the answer, as Google leaves out
// zero values.
func Running(state string, docsDone, docsEstimated, bytesDone, bytesEstimated int64) Step {
	return Step{state: state, docs: [2]int64{docsDone, docsEstimated}, bytes: [2]int64{bytesDone, bytesEstimated}}
}

// Successful is a finished export, its response holding the output folder.
func Successful(docs, bytes int64) Step {
	return Step{state: "SUCCESSFUL", done: true, docs: [2]int64{docs, docs}, bytes: [2]int64{bytes, bytes}}
}

// Failed is a finished export with a google.rpc error.
func Failed(code int, message string) Step {
	return Step{state: "FAILED", done: true, errCode: code, errMessage: message}
}

// Cancelled is an export an operator cancelled (google.rpc code 1).
func Cancelled() Step {
	return Step{state: "CANCELLED", done: true, errCode: 1, errMessage: "The operation was cancelled."}
}

// Progress is step with this progress: a finished export may have done
// more than estimated, a failed one nothing.
func Progress(step Step, docsDone, docsEstimated, bytesDone, bytesEstimated int64) Step {
	step.docs, step.bytes = [2]int64{docsDone, docsEstimated}, [2]int64{bytesDone, bytesEstimated}
	return step
}

// HTTPError makes the read answer status in Google's error format, with
// Retry-After (seconds) when retryAfter is not empty.
func HTTPError(status int, retryAfter string) Step {
	return Step{answer: Answer{Status: status, RetryAfter: retryAfter}}
}

// HTTPBody makes the read answer status with body as it is.
func HTTPBody(status int, body string) Step {
	return Step{answer: Answer{Status: status, Body: body}}
}

// Slow is step answered after delay, or never if the client gives up first.
func Slow(delay time.Duration, step Step) Step {
	step.delay = delay
	return step
}

// Until answers running until d has passed since the export call, and
// then from then on: an operation that ends at a time of its own however
// often it is read.
func Until(d time.Duration, running, then Step) Step {
	running.until, running.then = d, &then
	return running
}

// Answer is what a call answers instead of its normal answer (Override).
type Answer struct {
	// Status is the HTTP status; 0 is 200.
	Status int
	// Message is the message of Google's error body (Status 400 or more,
	// no Body); empty: the status text.
	Message string
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// Body, when set, is the answer's body as it is (application/json),
	// as a recorded answer, a proxy's page or a hostile answer would be.
	Body string
	// Delay holds the answer back, or forever if the client gives up first.
	Delay time.Duration
}

// ExportCall is one exportDocuments request as the fake received it.
type ExportCall struct {
	Project, Database string
	OutputURIPrefix   string
	CollectionIDs     []string
	NamespaceIDs      []string
	// SnapshotTime is as sent ("" : not sent).
	SnapshotTime string
	// Fields are the body's keys, sorted: a field sent empty is in it, an
	// absent one not.
	Fields []string
}

// Request is one HTTP request the fake received.
type Request struct {
	// Method is the API method it called ("" : none the fake serves).
	Method     Method
	HTTPMethod string
	// Path is the URL path unescaped ("/v1/projects/p/databases/(default)").
	Path  string
	Query url.Values
	Body  []byte
}

type operation struct {
	// kind is what the operation does: an export (""), opCreate or
	// opImport; it chooses the metadata and response it is answered with.
	kind    string
	name    string
	call    ExportCall
	imp     ImportCall
	db      poller.DatabaseInfo // the database a creation made
	prefix  string              // the output folder
	start   time.Time
	created time.Time
	script  []Step
	next    int
	gets    int
}

type override struct {
	answer Answer
	left   int // answers left; <= 0: every call
}

// Server is the fake Firestore Admin API.
type Server struct {
	t   testing.TB
	srv *httptest.Server

	mu          sync.Mutex
	ops         map[string]*operation
	order       []string
	exports     []ExportCall
	requests    []Request
	calls       map[Method]int
	overrides   map[Method]*override
	nextScript  []Step
	scriptFor   func(ExportCall) []Step
	imports     []ImportCall
	creates     []CreateCall
	importSteps []Step
	createSteps []Step
	databases   map[string]poller.DatabaseInfo // by name
	schedules   map[string][]poller.BackupSchedule
	backups     map[string][]poller.Backup // by project
	unreachable map[string][]string
	seq         int
	faults      faults.Injector
	latency     time.Duration
}

// SetLatency holds every answer back by d, as the real API's round trip
// does (the capacity run measures sweeps with it).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// New starts a fake Firestore Admin API, closed when t ends. It knows no
// database until told (AddDatabase, SetDatabase): every call about an
// unknown database answers 404, as Google does. An export runs one poll
// and succeeds with 1,000 documents until Script says otherwise.
func New(t testing.TB) *Server {
	s := &Server{
		t: t, ops: map[string]*operation{}, calls: map[Method]int{}, overrides: map[Method]*override{},
		databases: map[string]poller.DatabaseInfo{}, schedules: map[string][]poller.BackupSchedule{},
		backups: map[string][]poller.Backup{}, unreachable: map[string][]string{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the base URL to give the client (DSEXPORT_FIRESTORE_ENDPOINT).
func (s *Server) URL() string { return s.srv.URL + "/" }

// AddDatabase makes a database known, with a uid made from its name,
// location nam5, type DATASTORE_MODE and an hour of version retention,
// and returns it.
func (s *Server) AddDatabase(project, database string) poller.DatabaseInfo {
	s.t.Helper()
	db := poller.DatabaseInfo{
		Name: "projects/" + project + "/databases/" + database,
		UID:  fakeUID(project + "/" + database), Location: "nam5", Type: "DATASTORE_MODE",
		VersionRetention: time.Hour,
	}
	s.SetDatabase(db)
	return db
}

// SetDatabase makes db known, or changes it: db.Name is
// projects/{project}/databases/{database}. A zero EarliestVersion is
// answered as now less VersionRetention, as Google's moves with time.
func (s *Server) SetDatabase(db poller.DatabaseInfo) {
	s.t.Helper()
	if !databaseNameRE.MatchString(db.Name) {
		s.t.Fatalf("firestorefake.SetDatabase: name %q is not projects/{project}/databases/{database}", db.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.databases[db.Name] = db
}

// DeleteDatabase forgets a database; its schedules go with it, its backups
// stay (as Google keeps them).
func (s *Server) DeleteDatabase(project, database string) {
	name := "projects/" + project + "/databases/" + database
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.databases, name)
	delete(s.schedules, name)
}

// SetSchedules replaces the backup schedules of a database. A schedule
// without a name is given one.
func (s *Server) SetSchedules(project, database string, schedules ...poller.BackupSchedule) {
	parent := "projects/" + project + "/databases/" + database
	s.mu.Lock()
	defer s.mu.Unlock()
	list := slices.Clone(schedules)
	for i := range list {
		if list[i].Name == "" {
			s.seq++
			list[i].Name = parent + "/backupSchedules/" + fakeUID(fmt.Sprintf("%s/%d", parent, s.seq))
		}
	}
	s.schedules[parent] = list
}

// DeleteSchedules deletes every backup schedule of a database.
func (s *Server) DeleteSchedules(project, database string) {
	s.SetSchedules(project, database)
}

// SetBackups replaces the backups of project (in every location). Each
// backup's Name is projects/{project}/locations/{location}/backups/{id}.
func (s *Server) SetBackups(project string, backups ...poller.Backup) {
	s.t.Helper()
	for _, b := range backups {
		s.checkBackup(project, b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backups[project] = slices.Clone(backups)
}

// AddBackup adds b, or replaces the backup of the same name (a CREATING
// backup becoming READY).
func (s *Server) AddBackup(b poller.Backup) {
	s.t.Helper()
	m := backupNameRE.FindStringSubmatch(b.Name)
	if m == nil {
		s.t.Fatalf("firestorefake.AddBackup: name %q is not projects/{project}/locations/{location}/backups/{backup}", b.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.backups[m[1]]
	if i := slices.IndexFunc(list, func(x poller.Backup) bool { return x.Name == b.Name }); i >= 0 {
		list[i] = b
		return
	}
	s.backups[m[1]] = append(list, b)
}

func (s *Server) checkBackup(project string, b poller.Backup) {
	s.t.Helper()
	if m := backupNameRE.FindStringSubmatch(b.Name); m == nil || m[1] != project {
		s.t.Fatalf("firestorefake: backup name %q is not projects/%s/locations/{location}/backups/{backup}", b.Name, project)
	}
}

// SetUnreachable makes backups.list of project answer these locations as
// unreachable; their backups are left out of the list, as Google leaves
// out what it could not fetch.
func (s *Server) SetUnreachable(project string, locations ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unreachable[project] = slices.Clone(locations)
}

// Override makes the next times calls of m (every call, when times <= 0)
// answer a instead; a zero Answer clears it. An overridden call is counted
// and recorded all the same (an export in Exports too); a read of an
// operation overridden does not move its script on.
func (s *Server) Override(m Method, times int, a Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a == (Answer{}) {
		delete(s.overrides, m)
		return
	}
	s.overrides[m] = &override{answer: a, left: times}
}

// InjectFaults makes each call fail with probability rate, half of them
// 503 and half 429, drawn from a generator seeded with seed.
func (s *Server) InjectFaults(rate float64, seed uint64) { s.faults.Set(rate, seed, 0xf1e5) }

// Script sets the answers of the next exports' reads, one per read; the
// last step repeats. The export call itself answers PROCESSING with no
// progress yet.
func (s *Server) Script(steps ...Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextScript = steps
}

// ScriptEach sets the script of each later export from its call (a nil
// script: the default); it wins over Script.
func (s *Server) ScriptEach(f func(call ExportCall) []Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scriptFor = f
}

// AddOperation registers an export of project's database started elsewhere
// and returns its name.
func (s *Server) AddOperation(project, database string, steps ...Step) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addLocked(ExportCall{Project: project, Database: database, OutputURIPrefix: "gs://fake-bucket/exports"}, steps)
}

func (s *Server) addLocked(call ExportCall, steps []Step) string {
	s.seq++
	name := fmt.Sprintf("projects/%s/databases/%s/operations/ASAfs%06d", call.Project, call.Database, s.seq)
	if len(steps) == 0 {
		steps = []Step{Running("PROCESSING", 500, 1000, 5000, 10000), Successful(1000, 10000)}
	}
	start := time.Date(2026, 11, 23, 3, 0, 4, 837e6, time.UTC)
	prefix := strings.TrimSuffix(call.OutputURIPrefix, "/")
	if u, err := url.Parse(prefix); err == nil && strings.Trim(u.Path, "/") == "" {
		// Under a bare bucket the API makes a folder named for the start.
		prefix += "/" + start.Format("2006-01-02T15:04:05") + "_43519"
	}
	s.ops[name] = &operation{name: name, call: call, prefix: prefix, start: start, created: time.Now(), script: steps}
	s.order = append(s.order, name)
	return name
}

// Exports returns the exportDocuments calls received so far.
func (s *Server) Exports() []ExportCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.exports)
}

// Names returns the names of the operations the fake knows, oldest first.
func (s *Server) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.order)
}

// Gets returns how many reads the operation name received, overridden
// ones too.
func (s *Server) Gets(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op, ok := s.ops[name]; ok {
		return op.gets
	}
	return 0
}

// Calls returns how many calls of m the fake received, failed ones too.
func (s *Server) Calls(m Method) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[m]
}

// Requests returns every request received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

const (
	projectPart  = `([a-z0-9.:-]+)`
	databasePart = `(\(default\)|[a-z][a-z0-9-]*)`
)

var (
	databaseNameRE = regexp.MustCompile(`^projects/` + projectPart + `/databases/` + databasePart + `$`)
	backupNameRE   = regexp.MustCompile(`^projects/` + projectPart + `/locations/([a-z0-9-]+)/backups/([A-Za-z0-9_-]+)$`)
	routes         = []struct {
		httpMethod string
		re         *regexp.Regexp
		method     Method
	}{
		{http.MethodPost, regexp.MustCompile(`^/v1/projects/` + projectPart + `/databases/` + databasePart + `:exportDocuments$`), ExportDocuments},
		{http.MethodGet, regexp.MustCompile(`^/v1/(projects/` + projectPart + `/databases/` + databasePart + `/operations/[A-Za-z0-9_-]+)$`), GetOperation},
		{http.MethodGet, regexp.MustCompile(`^/v1/(projects/` + projectPart + `/databases/` + databasePart + `)$`), GetDatabase},
		{http.MethodGet, regexp.MustCompile(`^/v1/(projects/` + projectPart + `/databases/` + databasePart + `)/backupSchedules$`), ListBackupSchedules},
		{http.MethodGet, regexp.MustCompile(`^/v1/projects/` + projectPart + `/locations/(-|[a-z0-9-]+)/backups$`), ListBackups},
		{http.MethodPost, regexp.MustCompile(`^/v1/projects/` + projectPart + `/databases$`), CreateDatabase},
		{http.MethodDelete, regexp.MustCompile(`^/v1/(projects/` + projectPart + `/databases/` + databasePart + `)$`), DeleteDatabase},
		{http.MethodPost, regexp.MustCompile(`^/v1/projects/` + projectPart + `/databases/` + databasePart + `:importDocuments$`), ImportDocuments},
	}
	filterRE = regexp.MustCompile(`^(?i:database_uid)\s*=\s*"([^"]*)"$`)
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	body, _ := io.ReadAll(r.Body)
	req := Request{HTTPMethod: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: body}
	var m []string
	for _, rt := range routes {
		if r.Method == rt.httpMethod {
			if m = rt.re.FindStringSubmatch(r.URL.Path); m != nil {
				req.Method = rt.method
				break
			}
		}
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	if req.Method == "" {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "firestorefake does not support "+r.Method+" "+r.URL.Path)
		return
	}
	s.calls[req.Method]++
	var ov *Answer
	if o := s.overrides[req.Method]; o != nil {
		a := o.answer
		ov = &a
		if op, ok := s.ops[m[1]]; ok && req.Method == GetOperation {
			op.gets++
		}
		if o.left > 0 {
			if o.left--; o.left == 0 {
				delete(s.overrides, req.Method)
			}
		}
	}
	s.mu.Unlock()
	if fail, first := s.faults.Draw(); fail {
		status := http.StatusTooManyRequests
		if first {
			status = http.StatusServiceUnavailable
		}
		writeError(w, status, "injected fault")
		return
	}
	if ov != nil {
		switch req.Method {
		case ExportDocuments:
			if call, err := decodeExport(m[1], m[2], body); err == nil {
				s.mu.Lock()
				s.exports = append(s.exports, call)
				s.mu.Unlock()
			}
		case ImportDocuments:
			if call, err := decodeImport(m[1], m[2], body); err == nil {
				s.mu.Lock()
				s.imports = append(s.imports, call)
				s.mu.Unlock()
			}
		case CreateDatabase:
			if call, err := decodeCreate(m[1], r.URL.Query().Get("databaseId"), body); err == nil {
				s.mu.Lock()
				s.creates = append(s.creates, call)
				s.mu.Unlock()
			}
		}
		writeAnswer(w, r, *ov)
		return
	}
	switch req.Method {
	case ExportDocuments:
		s.export(w, m[1], m[2], body)
	case GetOperation:
		s.getOperation(w, r, m[1], m[2], m[3])
	case GetDatabase:
		s.getDatabase(w, m[1])
	case ListBackupSchedules:
		s.listSchedules(w, m[1])
	case ListBackups:
		s.listBackups(w, r, m[1], m[2])
	case CreateDatabase:
		s.createDatabase(w, m[1], r.URL.Query().Get("databaseId"), body)
	case DeleteDatabase:
		s.deleteDatabase(w, m[1])
	case ImportDocuments:
		s.importDocuments(w, m[1], m[2], body)
	}
}

// writeAnswer answers a; a zero Status with no Body is an empty 200.
func writeAnswer(w http.ResponseWriter, r *http.Request, a Answer) {
	if a.Delay > 0 {
		select {
		case <-time.After(a.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if a.RetryAfter != "" {
		w.Header().Set("Retry-After", a.RetryAfter)
	}
	status := a.Status
	if status == 0 {
		status = http.StatusOK
	}
	if a.Body != "" || status < 400 {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(status)
		io.WriteString(w, a.Body)
		return
	}
	msg := a.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	writeError(w, status, msg)
}

func (s *Server) knownLocked(project, database string) bool {
	_, ok := s.databases["projects/"+project+"/databases/"+database]
	return ok
}

// decodeExport reads an exportDocuments body, refusing unknown fields as
// Google does.
func decodeExport(project, database string, body []byte) (ExportCall, error) {
	var wire struct {
		OutputURIPrefix string   `json:"outputUriPrefix"`
		CollectionIDs   []string `json:"collectionIds"`
		NamespaceIDs    []string `json:"namespaceIds"`
		SnapshotTime    string   `json:"snapshotTime"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&wire); err != nil {
		return ExportCall{}, err
	}
	call := ExportCall{Project: project, Database: database, OutputURIPrefix: wire.OutputURIPrefix,
		CollectionIDs: wire.CollectionIDs, NamespaceIDs: wire.NamespaceIDs, SnapshotTime: wire.SnapshotTime}
	var fields map[string]json.RawMessage
	json.Unmarshal(body, &fields)
	for k := range fields {
		call.Fields = append(call.Fields, k)
	}
	slices.Sort(call.Fields)
	return call, nil
}

func (s *Server) export(w http.ResponseWriter, project, database string, body []byte) {
	call, err := decodeExport(project, database, body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Invalid JSON payload received. "+err.Error())
		return
	}
	s.mu.Lock()
	s.exports = append(s.exports, call)
	known := s.knownLocked(project, database)
	s.mu.Unlock()
	if !known {
		writeError(w, http.StatusNotFound, "Project '"+project+"' or database '"+database+"' does not exist.")
		return
	}
	if !strings.HasPrefix(call.OutputURIPrefix, "gs://") || len(call.OutputURIPrefix) <= len("gs://") {
		writeError(w, http.StatusBadRequest, "outputUriPrefix must be a Cloud Storage URI gs://BUCKET_NAME[/NAMESPACE_PATH].")
		return
	}
	if call.SnapshotTime != "" {
		t, err := time.Parse(time.RFC3339Nano, call.SnapshotTime)
		switch {
		case err != nil:
			writeError(w, http.StatusBadRequest, "Invalid value at 'snapshot_time' (type.googleapis.com/google.protobuf.Timestamp), Field 'snapshotTime', Illegal timestamp format.")
			return
		case !t.Equal(t.Truncate(time.Minute)):
			writeError(w, http.StatusBadRequest, "snapshot_time must be rounded to the minute.")
			return
		case t.After(time.Now()):
			writeError(w, http.StatusBadRequest, "snapshot_time must be in the past.")
			return
		}
	}
	s.mu.Lock()
	script := s.nextScript
	if s.scriptFor != nil {
		if sc := s.scriptFor(call); len(sc) > 0 {
			script = sc
		}
	}
	name := s.addLocked(call, script)
	out := s.ops[name].render(Step{state: "PROCESSING"})
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getOperation(w http.ResponseWriter, r *http.Request, name, project, database string) {
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
	for step.then != nil && time.Since(op.created) >= step.until {
		step = *step.then
	}
	s.mu.Unlock()
	if step.delay > 0 {
		select {
		case <-time.After(step.delay):
		case <-r.Context().Done():
			return
		}
	}
	if step.answer.Status != 0 {
		writeAnswer(w, r, step.answer)
		return
	}
	writeJSON(w, http.StatusOK, op.render(step))
}

// render builds the operation as the REST API sends it: done left out
// while running, zero values left out, int64s as strings.
func (op *operation) render(st Step) map[string]any {
	switch op.kind {
	case opCreate:
		return op.renderCreate(st)
	case opImport:
		return op.renderImport(st)
	}
	md := map[string]any{
		"@type":           "type.googleapis.com/google.firestore.admin.v1.ExportDocumentsMetadata",
		"startTime":       op.start.Format(time.RFC3339Nano),
		"operationState":  st.state,
		"outputUriPrefix": op.prefix,
	}
	if p := progress(st.docs); p != nil {
		md["progressDocuments"] = p
	}
	if p := progress(st.bytes); p != nil {
		md["progressBytes"] = p
	}
	if len(op.call.CollectionIDs) > 0 {
		md["collectionIds"] = op.call.CollectionIDs
	}
	if len(op.call.NamespaceIDs) > 0 {
		md["namespaceIds"] = op.call.NamespaceIDs
	}
	if op.call.SnapshotTime != "" {
		md["snapshotTime"] = op.call.SnapshotTime
	}
	body := map[string]any{"name": op.name, "metadata": md}
	if st.done {
		md["endTime"] = op.start.Add(53 * time.Minute).Format(time.RFC3339Nano)
		body["done"] = true
		if st.errCode != 0 || st.errMessage != "" {
			body["error"] = map[string]any{"code": st.errCode, "message": st.errMessage}
		} else if st.state == "SUCCESSFUL" {
			body["response"] = map[string]any{
				"@type":           "type.googleapis.com/google.firestore.admin.v1.ExportDocumentsResponse",
				"outputUriPrefix": op.prefix,
			}
		}
	}
	return body
}

func progress(p [2]int64) map[string]string {
	out := map[string]string{}
	if p[0] != 0 {
		out["completedWork"] = strconv.FormatInt(p[0], 10)
	}
	if p[1] != 0 {
		out["estimatedWork"] = strconv.FormatInt(p[1], 10)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (s *Server) getDatabase(w http.ResponseWriter, name string) {
	s.mu.Lock()
	db, ok := s.databases[name]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Database '"+name+"' does not exist.")
		return
	}
	writeJSON(w, http.StatusOK, databaseJSON(db))
}

// databaseJSON is db as the API answers a Database resource.
func databaseJSON(db poller.DatabaseInfo) map[string]any {
	earliest := db.EarliestVersion
	if earliest.IsZero() {
		earliest = time.Now().Add(-db.VersionRetention).UTC()
	}
	pitr := "POINT_IN_TIME_RECOVERY_DISABLED"
	if db.VersionRetention > time.Hour {
		pitr = "POINT_IN_TIME_RECOVERY_ENABLED"
	}
	out := map[string]any{
		"name":                          db.Name,
		"uid":                           db.UID,
		"createTime":                    "2024-03-05T10:11:12.345678Z",
		"updateTime":                    "2024-03-05T10:11:12.345678Z",
		"locationId":                    db.Location,
		"type":                          db.Type,
		"concurrencyMode":               "PESSIMISTIC",
		"versionRetentionPeriod":        duration(db.VersionRetention),
		"earliestVersionTime":           earliest.Format(time.RFC3339Nano),
		"pointInTimeRecoveryEnablement": pitr,
		"appEngineIntegrationMode":      "DISABLED",
		"deleteProtectionState":         "DELETE_PROTECTION_DISABLED",
		"databaseEdition":               "STANDARD",
		"etag":                          "IL3mzfzp0IgDMKeq1t/p0IgD",
	}
	for k, v := range out {
		if v == "" {
			delete(out, k)
		}
	}
	return out
}

func (s *Server) listSchedules(w http.ResponseWriter, parent string) {
	s.mu.Lock()
	_, known := s.databases[parent]
	list := slices.Clone(s.schedules[parent])
	s.mu.Unlock()
	if !known {
		writeError(w, http.StatusNotFound, "Database '"+parent+"' does not exist.")
		return
	}
	out := []map[string]any{}
	for _, bs := range list {
		m := map[string]any{"name": bs.Name, "retention": duration(bs.Retention)}
		if !bs.CreateTime.IsZero() {
			m["createTime"] = bs.CreateTime.UTC().Format(time.RFC3339Nano)
		}
		if !bs.UpdateTime.IsZero() {
			m["updateTime"] = bs.UpdateTime.UTC().Format(time.RFC3339Nano)
		}
		switch bs.Recurrence {
		case poller.Daily:
			m["dailyRecurrence"] = map[string]any{}
		case poller.Weekly:
			m["weeklyRecurrence"] = map[string]any{"day": bs.Weekday}
		}
		out = append(out, m)
	}
	body := map[string]any{}
	if len(out) > 0 {
		body["backupSchedules"] = out
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) listBackups(w http.ResponseWriter, r *http.Request, project, location string) {
	uid := ""
	if f := r.URL.Query().Get("filter"); f != "" {
		m := filterRE.FindStringSubmatch(strings.TrimSpace(f))
		if m == nil {
			writeError(w, http.StatusBadRequest, "firestorefake supports only the filter database_uid=\"UID\", not "+strconv.Quote(f))
			return
		}
		uid = m[1]
	}
	s.mu.Lock()
	list := slices.Clone(s.backups[project])
	unreachable := slices.Clone(s.unreachable[project])
	s.mu.Unlock()
	out := []map[string]any{}
	for _, b := range list {
		loc := backupNameRE.FindStringSubmatch(b.Name)[2]
		if (location != "-" && loc != location) || slices.Contains(unreachable, loc) || (uid != "" && b.DatabaseUID != uid) {
			continue
		}
		m := map[string]any{"name": b.Name, "state": string(b.State)}
		if b.Database != "" {
			m["database"] = b.Database
		}
		if b.DatabaseUID != "" {
			m["databaseUid"] = b.DatabaseUID
		}
		if !b.SnapshotTime.IsZero() {
			m["snapshotTime"] = b.SnapshotTime.UTC().Format(time.RFC3339Nano)
		}
		if !b.ExpireTime.IsZero() {
			m["expireTime"] = b.ExpireTime.UTC().Format(time.RFC3339Nano)
		}
		stats := map[string]any{}
		if b.Bytes != 0 {
			stats["sizeBytes"] = strconv.FormatInt(b.Bytes, 10)
		}
		if b.Documents != 0 {
			stats["documentCount"] = strconv.FormatInt(b.Documents, 10)
		}
		if len(stats) > 0 {
			m["stats"] = stats
		}
		out = append(out, m)
	}
	body := map[string]any{}
	if len(out) > 0 {
		body["backups"] = out
	}
	if location == "-" && len(unreachable) > 0 {
		body["unreachable"] = unreachable
	}
	writeJSON(w, http.StatusOK, body)
}

// duration writes d as a google.protobuf.Duration in JSON: seconds with 0,
// 3, 6 or 9 fractional digits and "s".
func duration(d time.Duration) string {
	sec, nanos := int64(d/time.Second), int64(d%time.Second)
	switch {
	case nanos == 0:
		return strconv.FormatInt(sec, 10) + "s"
	case nanos%1e6 == 0:
		return fmt.Sprintf("%d.%03ds", sec, nanos/1e6)
	case nanos%1e3 == 0:
		return fmt.Sprintf("%d.%06ds", sec, nanos/1e3)
	}
	return fmt.Sprintf("%d.%09ds", sec, nanos)
}

// fakeUID is a UUID4-shaped uid made from seed, the same for the same seed.
func fakeUID(seed string) string {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(seed); i++ {
		h = (h ^ uint64(seed[i])) * 1099511628211
	}
	g := h*0x9e3779b97f4a7c15 + 1
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(h>>32), uint16(h>>16), uint16(h)&0xfff, uint16(g>>48)&0xfff, g&0xffffffffffff)
}

var statusNames = map[int]string{
	400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS",
	412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
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
