package firestorefake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// This file holds what a restore drill calls: projects.databases.create,
// projects.databases.delete and projects.databases.importDocuments.

// The kinds of operation other than an export.
const (
	opCreate = "create"
	opImport = "import"
)

// ImportCall is one importDocuments request as the fake received it.
type ImportCall struct {
	Project, Database string
	InputURIPrefix    string
	CollectionIDs     []string
	NamespaceIDs      []string
	// Fields are the body's keys, sorted.
	Fields []string
}

// CreateCall is one databases.create request as the fake received it.
type CreateCall struct {
	Project    string
	DatabaseID string // the databaseId query parameter
	Type       string
	LocationID string
	// Fields are the body's keys, sorted.
	Fields []string
}

// ScriptImports sets the answers of the next imports' reads, one per read,
// the last repeating; the import call itself then answers PROCESSING. With
// no script (the default) an import is done at once: the call answers it
// SUCCESSFUL with 1,000 documents, and so does every read.
func (s *Server) ScriptImports(steps ...Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.importSteps = steps
}

// ScriptCreates does for database creations what ScriptImports does for
// imports: with a script, the call answers a creation not done yet and
// reads play the script (a done step, not failed, answers the database);
// without one it is done at once. The database is known from the call on
// either way, as Google lists one being created.
func (s *Server) ScriptCreates(steps ...Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.createSteps = steps
}

// Imports returns the importDocuments calls received so far.
func (s *Server) Imports() []ImportCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.imports)
}

// Creates returns the databases.create calls received so far.
func (s *Server) Creates() []CreateCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.creates)
}

// databaseIDRE is a database id databases.create takes: 4 to 63 lower-case
// letters, digits and hyphens, starting with a letter and not ending with
// a hyphen, or (default).
var databaseIDRE = regexp.MustCompile(`^(\(default\)|[a-z][a-z0-9-]{2,61}[a-z0-9])$`)

// fields are the keys of a JSON object body, sorted.
func fields(body []byte) []string {
	var m map[string]json.RawMessage
	json.Unmarshal(body, &m)
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// strict decodes body into v, refusing unknown fields as Google does.
func strict(body []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func decodeCreate(project, id string, body []byte) (CreateCall, error) {
	var wire struct {
		Type       string `json:"type"`
		LocationID string `json:"locationId"`
	}
	if err := strict(body, &wire); err != nil {
		return CreateCall{}, err
	}
	return CreateCall{Project: project, DatabaseID: id, Type: wire.Type, LocationID: wire.LocationID, Fields: fields(body)}, nil
}

func decodeImport(project, database string, body []byte) (ImportCall, error) {
	var wire struct {
		InputURIPrefix string   `json:"inputUriPrefix"`
		CollectionIDs  []string `json:"collectionIds"`
		NamespaceIDs   []string `json:"namespaceIds"`
	}
	if err := strict(body, &wire); err != nil {
		return ImportCall{}, err
	}
	return ImportCall{Project: project, Database: database, InputURIPrefix: wire.InputURIPrefix,
		CollectionIDs: wire.CollectionIDs, NamespaceIDs: wire.NamespaceIDs, Fields: fields(body)}, nil
}

// opStart is the start time of an operation the fake begins now, to the
// millisecond as Google's are written.
func opStart() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

func (s *Server) createDatabase(w http.ResponseWriter, project, id string, body []byte) {
	call, err := decodeCreate(project, id, body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Invalid JSON payload received. "+err.Error())
		return
	}
	s.mu.Lock()
	s.creates = append(s.creates, call)
	s.mu.Unlock()
	switch {
	case !databaseIDRE.MatchString(id):
		writeError(w, http.StatusBadRequest, "Invalid database_id: '"+id+"'. Database id must be 4-63 characters, contain only lowercase letters, numbers and hyphens, start with a letter and end with a letter or number, or be (default).")
		return
	case call.Type != "DATASTORE_MODE" && call.Type != "FIRESTORE_NATIVE":
		writeError(w, http.StatusBadRequest, "Database type must be DATASTORE_MODE or FIRESTORE_NATIVE.")
		return
	case call.LocationID == "":
		writeError(w, http.StatusBadRequest, "location_id is required.")
		return
	}
	name := "projects/" + project + "/databases/" + id
	s.mu.Lock()
	if _, ok := s.databases[name]; ok {
		s.mu.Unlock()
		writeError(w, http.StatusConflict, "Database already exists. Please use another database_id")
		return
	}
	db := poller.DatabaseInfo{Name: name, UID: fakeUID(project + "/" + id), Location: call.LocationID, Type: call.Type, VersionRetention: time.Hour}
	s.databases[name] = db
	op := s.newOpLocked(opCreate, project, id, s.createSteps)
	op.db = db
	out := op.render(op.script[0])
	if len(s.createSteps) > 0 {
		out = op.render(Step{})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// newOpLocked registers an operation of kind on project's database, played
// through steps; none: done at once (SUCCESSFUL, 1,000 documents).
func (s *Server) newOpLocked(kind, project, database string, steps []Step) *operation {
	s.seq++
	name := fmt.Sprintf("projects/%s/databases/%s/operations/ASAfs%06d", project, database, s.seq)
	if len(steps) == 0 {
		steps = []Step{Successful(1000, 10000)}
	}
	op := &operation{kind: kind, name: name, call: ExportCall{Project: project, Database: database},
		start: opStart(), created: time.Now(), script: steps}
	s.ops[name] = op
	s.order = append(s.order, name)
	return op
}

func (s *Server) deleteDatabase(w http.ResponseWriter, name string) {
	s.mu.Lock()
	db, ok := s.databases[name]
	if ok {
		delete(s.databases, name)
		delete(s.schedules, name)
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Database '"+name+"' does not exist.")
		return
	}
	s.mu.Lock()
	s.seq++
	opName := fmt.Sprintf("%s/operations/ASAfs%06d", name, s.seq)
	s.mu.Unlock()
	resp := databaseJSON(db)
	resp["@type"] = "type.googleapis.com/google.firestore.admin.v1.Database"
	writeJSON(w, http.StatusOK, map[string]any{
		"name":     opName,
		"metadata": map[string]any{"@type": "type.googleapis.com/google.firestore.admin.v1.DeleteDatabaseMetadata"},
		"done":     true,
		"response": resp,
	})
}

func (s *Server) importDocuments(w http.ResponseWriter, project, database string, body []byte) {
	call, err := decodeImport(project, database, body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Invalid JSON payload received. "+err.Error())
		return
	}
	s.mu.Lock()
	s.imports = append(s.imports, call)
	known := s.knownLocked(project, database)
	s.mu.Unlock()
	if !known {
		writeError(w, http.StatusNotFound, "Project '"+project+"' or database '"+database+"' does not exist.")
		return
	}
	if !strings.HasPrefix(call.InputURIPrefix, "gs://") || len(call.InputURIPrefix) <= len("gs://") {
		writeError(w, http.StatusBadRequest, "inputUriPrefix must be a Cloud Storage URI gs://BUCKET_NAME[/NAMESPACE_PATH].")
		return
	}
	s.mu.Lock()
	op := s.newOpLocked(opImport, project, database, s.importSteps)
	op.imp = call
	out := op.render(op.script[0])
	if len(s.importSteps) > 0 {
		out = op.render(Step{state: "PROCESSING"})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// importTook is how long the fake's imports take, from their start to
// their end: a drill's restore time is taken from them.
const importTook = 1500 * time.Millisecond

// renderCreate is a databases.create operation: CreateDatabaseMetadata is
// empty, the response of a done one is the database.
func (op *operation) renderCreate(st Step) map[string]any {
	body := map[string]any{
		"name":     op.name,
		"metadata": map[string]any{"@type": "type.googleapis.com/google.firestore.admin.v1.CreateDatabaseMetadata"},
	}
	if !st.done {
		return body
	}
	body["done"] = true
	if st.errCode != 0 || st.errMessage != "" {
		body["error"] = map[string]any{"code": st.errCode, "message": st.errMessage}
		return body
	}
	resp := databaseJSON(op.db)
	resp["@type"] = "type.googleapis.com/google.firestore.admin.v1.Database"
	body["response"] = resp
	return body
}

// renderImport is an importDocuments operation: ImportDocumentsMetadata,
// and on success an empty response.
func (op *operation) renderImport(st Step) map[string]any {
	md := map[string]any{
		"@type":          "type.googleapis.com/google.firestore.admin.v1.ImportDocumentsMetadata",
		"startTime":      op.start.Format(time.RFC3339Nano),
		"operationState": st.state,
		"inputUriPrefix": op.imp.InputURIPrefix,
	}
	if p := progress(st.docs); p != nil {
		md["progressDocuments"] = p
	}
	if p := progress(st.bytes); p != nil {
		md["progressBytes"] = p
	}
	if len(op.imp.CollectionIDs) > 0 {
		md["collectionIds"] = op.imp.CollectionIDs
	}
	if len(op.imp.NamespaceIDs) > 0 {
		md["namespaceIds"] = op.imp.NamespaceIDs
	}
	body := map[string]any{"name": op.name, "metadata": md}
	if st.done {
		md["endTime"] = op.start.Add(importTook).Format(time.RFC3339Nano)
		body["done"] = true
		if st.errCode != 0 || st.errMessage != "" {
			body["error"] = map[string]any{"code": st.errCode, "message": st.errMessage}
		} else if st.state == "SUCCESSFUL" {
			body["response"] = map[string]any{"@type": "type.googleapis.com/google.protobuf.Empty"}
		}
	}
	return body
}
