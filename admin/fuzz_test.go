package admin_test

// Fuzz targets for what the adapter takes from the Admin API and sends to it:
// the operation JSON, and operation names (from task payloads and HTTP
// bodies) as they become request URLs. Each asserts properties of what is
// accepted, not only "no panic". Seed corpora: the f.Add calls below and
// testdata/fuzz/<Target>/. Run one with
//
//	go test ./admin -run '^$' -fuzz '^FuzzParseName$' -fuzztime 20s
//
// or all of them briefly with scripts/fuzz.sh.

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/api/googleapi"

	"github.com/dsexport/dsexport/admin"
	"github.com/dsexport/dsexport/poller"
)

// wireSamples are the recorded Admin API answers in testdata/wire.
func wireSamples(f *testing.F) [][]byte {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "wire", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	if len(files) == 0 {
		f.Fatal("no wire samples in testdata/wire")
	}
	var out [][]byte
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

func FuzzParseOperationJSON(f *testing.F) {
	for _, data := range wireSamples(f) {
		f.Add(data)
	}
	for _, s := range []string{
		`{}`,
		`null`,
		`{"done": true}`,
		`{"done": true, "error": {}}`,
		`{"done": true, "error": {"code": 0, "message": ""}}`,
		`{"done": true, "error": {"code": 13}}`,
		`{"done": false, "metadata": {"common": {"state": "SUCCESSFUL"}}}`,
		`{"done": true, "metadata": {"common": {"state": "SUCCESSFUL"}}, "error": {"code": 9}}`,
		`{"done": true, "metadata": {"common": {"state": "PROCESSING"}}}`,
		`{"name": "projects/p/operations/../../v1/x"}`,
		`{"name": "projects/example-proj/operations/x?alt=media"}`,
		`{"name": "projects/example-proj/operations/x%2F..%2F..%2Fother"}`,
		`{"name": "https://evil.example/projects/p/operations/x"}`,
		`{"name": "projects/example.com:proj/operations/abc_-1", "done": true}`,
		`{"name": "projects/p\u0000x/operations/1"}`,
		`{"name": "x", "name": "projects/example-proj/operations/1"}`,
		`{"NAME": "projects/example-proj/operations/1", "Done": true}`,
		`{"error": {"code": 1}, "error": null, "done": true}`,
		`{"error": {"code": 1}, "error": {"message": "m"}, "done": true}`,
		`{"metadata": null, "response": null, "error": null}`,
		`{"metadata": {"common": {"startTime": "2026-11-23T03:00:04.837+14:00", "endTime": "0000-01-01T00:00:00+01:00"}}}`,
		`{"metadata": {"common": {"startTime": "yesterday"}}}`,
		`{"metadata": {"progressEntities": {"workCompleted": "-9223372036854775808", "workEstimated": "9223372036854775807"}}}`,
		`{"metadata": {"progressBytes": {"workCompleted": "9223372036854775808"}}}`,
		`{"metadata": {"progressEntities": {"workCompleted": 12}}}`,
		`{"metadata": {"entityFilter": {"kinds": [], "namespaceIds": null}}}`,
		`{"metadata": {"entityFilter": {"kinds": ["\ud800", "K\u2028"], "namespaceIds": [""]}}}`,
		`{"metadata": {"common": {"labels": {"trigger": "manual\n"}}}}`,
		`{"metadata": {"outputUrlPrefix": "gs://b\u0000/x"}, "response": {"outputUrl": "\xff\xfe"}}`,
		`{"done": "yes"}`,
		`{"error": {"code": 1e3}}`,
		"\ufeff{}",
		`[`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		op, err := admin.ParseOperationJSON(data)
		if err != nil {
			return
		}
		if op.Name != "" {
			project, err := poller.ParseName(op.Name)
			if err != nil {
				t.Fatalf("ParseOperationJSON accepted name %q that ParseName rejects: %v", op.Name, err)
			}
			if project != op.Project {
				t.Fatalf("ParseOperationJSON(%q).Project = %q; ParseName says %q", data, op.Project, project)
			}
		} else if op.Project != "" {
			t.Fatalf("ParseOperationJSON(%q): project %q without a name", data, op.Project)
		}

		// What the adapter gives is within the domain's bounds already.
		if b := op.Bounded(); !reflect.DeepEqual(b, op) {
			t.Fatalf("ParseOperationJSON(%q) = %+v, beyond the bounds of Operation.Bounded", data, op)
		}

		outcome := poller.Classify(op)
		switch outcome {
		case poller.OutcomeNone, poller.OutcomeSuccess, poller.OutcomeFailure, poller.OutcomeUnexpected:
		default:
			// OutcomeTimeout is decided by the poll loop, never from a snapshot.
			t.Fatalf("Classify(%+v) = %q; not an outcome a snapshot can have", op, outcome)
		}
		hasError := op.ErrorCode != 0 || op.ErrorMessage != ""
		switch {
		case !op.Done && outcome != poller.OutcomeNone:
			t.Fatalf("Classify of a running operation (done=false) = %q; want none", outcome)
		case op.Done && hasError && outcome != poller.OutcomeFailure:
			t.Fatalf("Classify of a done operation with error %d %q = %q; want failure", op.ErrorCode, op.ErrorMessage, outcome)
		case outcome == poller.OutcomeSuccess && op.State != poller.StateSuccessful:
			t.Fatalf("Classify = success for state %q", op.State)
		}

		// An error object in the answer is never lost, even an empty one:
		// done with an error must be reported as a failure.
		var raw struct {
			Error *json.RawMessage `json:"error"`
		}
		if json.Unmarshal(data, &raw) == nil && raw.Error != nil && !hasError {
			t.Fatalf("ParseOperationJSON(%q) dropped the error object %s", data, *raw.Error)
		}

		// Round trip: the snapshot written back in the wire shape parses to the
		// same snapshot.
		wire, ok := operationWire(op)
		if !ok {
			return
		}
		again, err := admin.ParseOperationJSON(wire)
		if err != nil {
			t.Fatalf("ParseOperationJSON(%s) (written back from %+v): %v", wire, op, err)
		}
		if !reflect.DeepEqual(again, op) {
			t.Fatalf("round trip changed the operation:\nfirst  %+v\nagain  %+v\nwire   %s", op, again, wire)
		}
	})
}

// operationWire writes op in the Admin API's wire shape, as the wire samples
// have it. It returns false when op holds a time RFC 3339 cannot write (a
// year outside 0000-9999 after conversion to UTC).
func operationWire(op poller.Operation) ([]byte, bool) {
	timeString := func(t time.Time) (string, bool) {
		if t.IsZero() {
			return "", true
		}
		if t.Year() < 0 || t.Year() > 9999 {
			return "", false
		}
		return t.Format(time.RFC3339Nano), true
	}
	start, ok1 := timeString(op.StartTime)
	end, ok2 := timeString(op.EndTime)
	if !ok1 || !ok2 {
		return nil, false
	}
	common := map[string]any{
		"operationType": "EXPORT_ENTITIES",
		"state":         string(op.State),
		"startTime":     start,
		"endTime":       end,
	}
	if op.Trigger != "" {
		common["labels"] = map[string]string{"trigger": string(op.Trigger)}
	}
	progress := func(done, estimated int64) map[string]string {
		return map[string]string{
			"workCompleted": strconv.FormatInt(done, 10),
			"workEstimated": strconv.FormatInt(estimated, 10),
		}
	}
	lro := map[string]any{
		"name": op.Name,
		"done": op.Done,
		"metadata": map[string]any{
			"@type":            "type.googleapis.com/google.datastore.admin.v1.ExportEntitiesMetadata",
			"common":           common,
			"progressEntities": progress(op.EntitiesCompleted, op.EntitiesEstimated),
			"progressBytes":    progress(op.BytesCompleted, op.BytesEstimated),
			// nil stays null and an empty list stays [], as they came in.
			"entityFilter":    map[string]any{"kinds": op.Kinds, "namespaceIds": op.Namespaces},
			"outputUrlPrefix": op.OutputURLPrefix,
		},
	}
	if op.OutputURL != "" {
		lro["response"] = map[string]any{
			"@type":     "type.googleapis.com/google.datastore.admin.v1.ExportEntitiesResponse",
			"outputUrl": op.OutputURL,
		}
	}
	if op.ErrorCode != 0 || op.ErrorMessage != "" {
		lro["error"] = map[string]any{"code": op.ErrorCode, "message": op.ErrorMessage}
	}
	data, err := json.Marshal(lro)
	if err != nil {
		panic(err) // only strings, numbers, bools and lists of them
	}
	return data, true
}

// trickyNames are operation names and ids that try to leave
// projects/{project}/operations/{id}.
var trickyNames = []string{
	"projects/example-proj/operations/ASA1MTAwNDQxNjAJGnRsdWFmZWQHEmxhcnRuZWNzdS1zYm9qLW5pbWRhEgoSAHMQ",
	"projects/example.com:proj/operations/abc_-1",
	"projects/p/operations/1",
	"projects/ab/operations/x",
	"ASA1MTAw",
	"",
	"projects/p/operations/",
	"projects//operations/x",
	"projects/p/operations/../../v1/x",
	"projects/example-proj/operations/x/../../../v1/projects/other:export",
	"projects/example-proj/operations/x/operations/y",
	"projects/example-proj/operations/x?alt=media",
	"projects/example-proj/operations/x#y",
	"projects/example-proj/operations/x%2F..%2F..",
	"projects/example-proj/operations/%2e%2e",
	"projects/a..b/operations/x",
	"projects/a.:b/operations/x",
	"projects/a:b:c/operations/x",
	"https://evil.example/projects/p/operations/x",
	"//evil.example/projects/p/operations/x",
	"@evil.example/projects/p/operations/x",
	"projects/p@evil.example/operations/x",
	"projects/example-proj/operations/x\n",
	"projects/example-proj/operations/x\r\nHost: evil.example",
	"projects/example-proj/operations/x y",
	"projects/example-proj/operations/x\t",
	"projects/example-proj/operations/x\x00",
	"projects/exämple/operations/x",
	"projects/example-proj/operations/ｘ",
	"projects/example-proj/operations/x\u202e",
	"projects/Example/operations/x",
	"projects/p/databases/x",
	"/projects/p/operations/x",
	"projects/p/operations/x/",
	"projects\\p\\operations\\x",
}

func FuzzParseName(f *testing.F) {
	for _, s := range trickyNames {
		f.Add(s)
	}
	for _, data := range wireSamples(f) {
		var lro struct{ Name string }
		if err := json.Unmarshal(data, &lro); err != nil {
			f.Fatal(err)
		}
		f.Add(lro.Name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		project, err := poller.ParseName(name)
		if err != nil {
			return
		}
		checkSafeName(t, name)
		if project == "" || !strings.HasPrefix(name, "projects/"+project+"/operations/") {
			t.Fatalf("ParseName(%q) = project %q, which is not the name's project", name, project)
		}
		got, err := poller.QualifyName(project, name)
		if err != nil || got != name {
			t.Fatalf("QualifyName(%q, %q) = %q, %v; want the name unchanged", project, name, got, err)
		}
		got, err = poller.QualifyName("other-project", name)
		if err != nil || got != name {
			t.Fatalf("QualifyName(other-project, %q) = %q, %v; want the name unchanged", name, got, err)
		}
	})
}

// checkSafeName fails t unless name, which ParseName accepted, is plainly
// projects/{project}/operations/{id} and cannot take a request anywhere but
// the Admin API's operations.get.
func checkSafeName(t *testing.T, name string) {
	t.Helper()
	if !strings.HasPrefix(name, "projects/") {
		t.Fatalf("ParseName accepted %q, which does not start with projects/", name)
	}
	if n := strings.Count(name, "/operations/"); n != 1 {
		t.Fatalf("ParseName accepted %q, which has %d /operations/", name, n)
	}
	if n := strings.Count(name, "/"); n != 3 {
		t.Fatalf("ParseName accepted %q, which has %d slashes; want 3", name, n)
	}
	for _, bad := range []string{"..", "//", "?", "#", "%", "\\", "@"} {
		if strings.Contains(name, bad) {
			t.Fatalf("ParseName accepted %q, which contains %q", name, bad)
		}
	}
	if !utf8.ValidString(name) {
		t.Fatalf("ParseName accepted %q, which is not UTF-8", name)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII {
			t.Fatalf("ParseName accepted %q, which contains %U", name, r)
		}
	}

	// Concatenated into the URL, as the original design did.
	const base = "https://datastore.googleapis.com/v1/"
	u, err := url.Parse(base + name)
	if err != nil {
		t.Fatalf("url.Parse(%q): %v", base+name, err)
	}
	if u.Host != "datastore.googleapis.com" || u.Path != "/v1/"+name || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		t.Fatalf("name %q steers %s+name to host %q path %q query %q fragment %q", name, base, u.Host, u.Path, u.RawQuery, u.Fragment)
	}

	// As the generated client builds projects.operations.get: v1/{+name}.
	u, err = url.Parse(googleapi.ResolveRelative("https://datastore.googleapis.com/", "v1/{+name}") + "?alt=json&prettyPrint=false")
	if err != nil {
		t.Fatal(err)
	}
	googleapi.Expand(u, map[string]string{"name": name})
	if u.Host != "datastore.googleapis.com" || u.Path != "/v1/"+name || u.RawQuery != "alt=json&prettyPrint=false" {
		t.Fatalf("name %q steers operations.get to %s", name, u)
	}
	if got := u.String(); got != base+name+"?alt=json&prettyPrint=false" {
		t.Fatalf("name %q: operations.get requests %s", name, got)
	}
}

// opIDRE is the bare operation id form QualifyName completes.
var opIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,500}$`)

// FuzzQualifyName checks that a project ValidateProject accepts and a bare id
// make a name ParseName accepts, of that project: otherwise an export started
// for a configured project could not be followed.

func FuzzQualifyName(f *testing.F) {
	for _, s := range []struct{ project, id string }{
		{"example-proj", "ASA1MTAwNDQxNjAJGnRsdWFmZWQHEmxhcnRuZWNzdS1zYm9qLW5pbWRhEgoSAHMQ"},
		{"example.com:proj", "abc_-1"},
		{"example.com:my-project", "abc_-1"},
		{"sub.example.co.uk:my-project", "x"},
		{"local-demo", "1"},
		{"ab", "x"},
		{"a..b", "x"},
		{"example-proj", "projects/other-proj/operations/x"},
		{"example-proj", "../../v1/x"},
		{"example-proj", "x/../y"},
		{"example-proj", "x?alt=media"},
		{"example-proj", "%2F"},
		{"example-proj", ""},
		{"", "x"},
		{"evil.example/x", "y"},
		{"example-proj/operations/x", "y"},
		{"example-proj", strings.Repeat("A", 501)},
	} {
		f.Add(s.project, s.id)
	}
	f.Fuzz(func(t *testing.T, project, id string) {
		name, err := poller.QualifyName(project, id)
		if err == nil {
			checkSafeName(t, name)
			got, err := poller.ParseName(name)
			if err != nil {
				t.Fatalf("QualifyName(%q, %q) = %q, which ParseName rejects: %v", project, id, name, err)
			}
			if opIDRE.MatchString(id) {
				if want := "projects/" + project + "/operations/" + id; name != want || got != project {
					t.Fatalf("QualifyName(%q, %q) = %q (project %q); want %q", project, id, name, got, want)
				}
			} else if name != id {
				t.Fatalf("QualifyName(%q, %q) = %q; a full name must come back unchanged", project, id, name)
			}
		}
		if poller.ValidateProject(project) == nil && opIDRE.MatchString(id) && err != nil {
			t.Fatalf("ValidateProject(%q) accepts the project, but QualifyName(%q, %q) fails: %v", project, project, id, err)
		}
	})
}
