package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// TestWriteRecordRefused shows a refused start as one: Google never had an
// operation by its name, so there is nothing to describe.
func TestWriteRecordRefused(t *testing.T) {
	rec := poller.Record{Outcome: poller.OutcomeFailure, Operation: poller.Operation{
		Name: "projects/p/operations/dsexport-refused-1", Project: "p", Refused: true, Done: true,
		ErrorCode: 7, ErrorMessage: "caller lacks datastore.databases.export",
	}}
	var b bytes.Buffer
	if err := writeRecord(&b, rec, time.UTC); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if got, want := strings.SplitN(out, "\n", 2)[0], "Datastore export could not be started"; got != want {
		t.Errorf("title = %q; want %q\n%s", got, want, out)
	}
	if got, want := strings.Contains(out, "gcloud datastore operations describe"), false; got != want {
		t.Errorf("refused start offers a describe command: %v; want %v\n%s", got, want, out)
	}
	if got, want := strings.Contains(out, "caller lacks datastore.databases.export"), true; got != want {
		t.Errorf("refused start shows the API's refusal: %v; want %v\n%s", got, want, out)
	}
}
