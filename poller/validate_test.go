package poller_test

import (
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
		})
	}
}
