package poller_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dsexport/dsexport/poller"
)

func TestValidateExport(t *testing.T) {
	ok := poller.ExportRequest{Project: "example-proj", OutputURLPrefix: "gs://example-backups/daily"}
	if err := poller.ValidateExport(ok); err != nil {
		t.Fatalf("ValidateExport(%+v) = %v; want nil", ok, err)
	}
	many := make([]string, 11)
	for i := range many {
		many[i] = fmt.Sprintf("K%d", i)
	}
	tests := []struct {
		name  string
		edit  func(r *poller.ExportRequest)
		field string // empty: valid
	}{
		{"bucket only", func(r *poller.ExportRequest) { r.OutputURLPrefix = "gs://example-backups" }, ""},
		{"dotted bucket", func(r *poller.ExportRequest) { r.OutputURLPrefix = "gs://backups.example.com/x" }, ""},
		{"default namespace", func(r *poller.ExportRequest) { r.Namespaces = []string{""} }, ""},
		{"100 combinations", func(r *poller.ExportRequest) { r.Kinds = many[:10]; r.Namespaces = many[:10] }, ""},
		{"no project", func(r *poller.ExportRequest) { r.Project = "" }, "project"},
		{"bad project", func(r *poller.ExportRequest) { r.Project = "Example_Proj" }, "project"},
		{"s3 prefix", func(r *poller.ExportRequest) { r.OutputURLPrefix = "s3://bucket/x" }, "outputUrlPrefix"},
		{"empty prefix", func(r *poller.ExportRequest) { r.OutputURLPrefix = "" }, "outputUrlPrefix"},
		{"no bucket", func(r *poller.ExportRequest) { r.OutputURLPrefix = "gs:///x" }, "outputUrlPrefix"},
		{"upper-case bucket", func(r *poller.ExportRequest) { r.OutputURLPrefix = "gs://Backups" }, "outputUrlPrefix"},
		{"short bucket", func(r *poller.ExportRequest) { r.OutputURLPrefix = "gs://ab" }, "outputUrlPrefix"},
		{"goog bucket", func(r *poller.ExportRequest) { r.OutputURLPrefix = "gs://google-backups" }, "outputUrlPrefix"},
		{"ip bucket", func(r *poller.ExportRequest) { r.OutputURLPrefix = "gs://192.168.1.1" }, "outputUrlPrefix"},
		{"long bucket", func(r *poller.ExportRequest) { r.OutputURLPrefix = "gs://" + strings.Repeat("a", 64) }, "outputUrlPrefix"},
		{"newline in path", func(r *poller.ExportRequest) { r.OutputURLPrefix = "gs://example-backups/a\nb" }, "outputUrlPrefix"},
		{"path of 1024 bytes", func(r *poller.ExportRequest) { r.OutputURLPrefix = "gs://example-backups/" + strings.Repeat("p", 1024) }, ""},
		{"path of 1025 bytes", func(r *poller.ExportRequest) { r.OutputURLPrefix = "gs://example-backups/" + strings.Repeat("p", 1025) }, "outputUrlPrefix"},
		{"prefix of 1500 bytes", func(r *poller.ExportRequest) {
			r.OutputURLPrefix = "gs://example-backups/" + strings.Repeat("p/", 740)[:1500-len("gs://example-backups/")]
		}, "outputUrlPrefix"},
		{"reserved kind", func(r *poller.ExportRequest) { r.Kinds = []string{"__Stat_Total__"} }, "kinds"},
		{"empty kind", func(r *poller.ExportRequest) { r.Kinds = []string{""} }, "kinds"},
		{"101 combinations", func(r *poller.ExportRequest) { r.Kinds = many; r.Namespaces = many[:10] }, "kinds × namespaces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := ok
			tt.edit(&req)
			err := poller.ValidateExport(req)
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("ValidateExport(%+v) = %v; want nil", req, err)
			case tt.field != "" && err == nil:
				t.Fatalf("ValidateExport(%+v) = nil; want an error naming %s", req, tt.field)
			case tt.field != "" && !strings.HasPrefix(err.Error(), tt.field+":"):
				t.Fatalf("ValidateExport(%+v) = %q; want it to name %s", req, err, tt.field)
			}
			var fe *poller.FieldError
			if tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field) {
				t.Fatalf("ValidateExport(%+v) = %#v; want a *poller.FieldError with Field %q", req, err, tt.field)
			}
		})
	}
}

// TestFieldErrorText pins the messages: they are the bodies of HTTP 400
// answers, "field: message" as before FieldError existed.
func TestFieldErrorText(t *testing.T) {
	ok := poller.ExportRequest{Project: "example-proj", OutputURLPrefix: "gs://example-backups/daily"}
	tests := []struct {
		edit func(r *poller.ExportRequest)
		want string
	}{
		{func(r *poller.ExportRequest) { r.Project = "" }, "project: project is empty"},
		{func(r *poller.ExportRequest) { r.Project = "Bad_Proj" }, `project: project "Bad_Proj" is not a valid project ID`},
		{func(r *poller.ExportRequest) { r.OutputURLPrefix = "s3://b" }, `outputUrlPrefix: output prefix "s3://b" must start with gs://`},
		{func(r *poller.ExportRequest) { r.OutputURLPrefix = "gs://ab" }, `outputUrlPrefix: output prefix "gs://ab": bucket name "ab" must be 3 to 222 characters`},
		{func(r *poller.ExportRequest) { r.Kinds = []string{"__x__"} }, `kinds: "__x__" is a reserved kind and cannot be exported`},
		{func(r *poller.ExportRequest) { r.Namespaces = []string{"a b"} }, `namespaces: "a b" is not a namespace: at most 100 of letters, digits, '.', '_' and '-'`},
	}
	for _, tt := range tests {
		req := ok
		tt.edit(&req)
		if got := fmt.Sprint(poller.ValidateExport(req)); got != tt.want {
			t.Errorf("ValidateExport(%+v) = %q; want %q", req, got, tt.want)
		}
	}
}

// TestValidationQuotesBounded checks that an error quotes a value from
// outside bounded: it is the body of a 400 answer and goes into the log.
func TestValidationQuotesBounded(t *testing.T) {
	huge := strings.Repeat("x", 1<<20)
	ok := poller.ExportRequest{Project: "example-proj", OutputURLPrefix: "gs://example-backups/daily"}
	for _, edit := range []func(r *poller.ExportRequest){
		func(r *poller.ExportRequest) { r.Project = huge },
		func(r *poller.ExportRequest) { r.OutputURLPrefix = "gs://example-backups/" + huge },
		func(r *poller.ExportRequest) { r.OutputURLPrefix = "gs://" + huge },
		func(r *poller.ExportRequest) { r.OutputURLPrefix = huge },
		func(r *poller.ExportRequest) { r.Kinds = []string{"__" + huge + "__"} },
		func(r *poller.ExportRequest) { r.Namespaces = []string{huge + " "} },
	} {
		req := ok
		edit(&req)
		err := poller.ValidateExport(req)
		if err == nil || len(err.Error()) > 1000 || !strings.Contains(err.Error(), "bytes in all]") {
			t.Errorf("ValidateExport = %.200q… (%d bytes); want an error quoting a bounded value", err, len(fmt.Sprint(err)))
		}
	}
	_, err := poller.ParseName(huge)
	if err == nil || len(err.Error()) > 1000 {
		t.Errorf("ParseName(1 MiB) = %d bytes of error; want it bounded", len(fmt.Sprint(err)))
	}
}

func TestNamesOfDatabases(t *testing.T) {
	good := map[string][2]string{
		"projects/shop-prod/operations/ASA1":                      {"shop-prod", ""},
		"projects/shop-prod/databases/analytics/operations/ASA1":  {"shop-prod", "analytics"},
		"projects/shop-prod/databases/(default)/operations/AB_-1": {"shop-prod", "(default)"},
	}
	for name, want := range good {
		p, db, err := poller.ParseNameIn(name)
		if err != nil || p != want[0] || db != want[1] {
			t.Errorf("ParseNameIn(%q) = %q, %q, %v; want %q, %q", name, p, db, err, want[0], want[1])
		}
	}
	for _, name := range []string{
		"projects/shop-prod/databases/Analytics/operations/ASA1",
		"projects/shop-prod/databases/ab/operations/ASA1",
		"projects/shop-prod/databases/analytics-/operations/ASA1",
		"projects/shop-prod/databases/../operations/ASA1",
		"projects/shop-prod/databases/analytics/documents/ASA1",
		"projects/shop-prod/databases//operations/ASA1",
		"projects/shop-prod/databases/a/b/operations/ASA1",
	} {
		if _, _, err := poller.ParseNameIn(name); err == nil {
			t.Errorf("ParseNameIn(%q) accepted it", name)
		}
	}
	if got, err := poller.QualifyNameIn("shop-prod", "analytics", "ASA1"); err != nil || got != "projects/shop-prod/databases/analytics/operations/ASA1" {
		t.Errorf("QualifyNameIn(analytics, ASA1) = %q, %v", got, err)
	}
	if got, err := poller.QualifyNameIn("shop-prod", "(default)", "ASA1"); err != nil || got != "projects/shop-prod/operations/ASA1" {
		t.Errorf("QualifyNameIn((default), ASA1) = %q, %v", got, err)
	}
	for _, id := range []string{"", "(default)", "analytics", "a-1b"} {
		if err := poller.ValidateDatabase(id); err != nil {
			t.Errorf("ValidateDatabase(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"Analytics", "abc", "1abc", "abc-", "(Default)", "a_bc", strings.Repeat("a", 64)} {
		if err := poller.ValidateDatabase(id); err == nil {
			t.Errorf("ValidateDatabase(%q) accepted it", id)
		}
	}
	if got := poller.Scope("shop-prod", "(default)"); got != "shop-prod" {
		t.Errorf("Scope of (default) = %q", got)
	}
	if got := poller.Scope("shop-prod", "analytics"); got != "shop-prod/databases/analytics" {
		t.Errorf("Scope of analytics = %q", got)
	}
}
