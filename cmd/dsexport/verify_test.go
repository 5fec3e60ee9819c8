package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/content/contenttest"
	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/poller"
)

// TestVerify reads a real export (files the Datastore emulator wrote, in
// content/testdata) from an in-process Cloud Storage: the counts of the
// files themselves, and a mismatch with the operation's own count.
func TestVerify(t *testing.T) {
	contenttest.Serve(t, contenttest.LoadDir(t, "../../content/testdata/export"))
	st, project := testrig.Store(t)
	vars := map[string]string{"GOOGLE_CLOUD_PROJECT": project, "DATASTORE_EMULATOR_HOST": emulatortest.Host(t)}
	ctx := context.Background()
	record := func(id string, entities int64) string {
		t.Helper()
		name := "projects/" + project + "/operations/" + id
		op := poller.Operation{Name: name, Project: project, Done: true, State: poller.StateSuccessful, Kinds: []string{"Order"},
			OutputURL:         "gs://testdata/orders/2026-12-02T073301_754/2026-12-02T073301_754.overall_export_metadata",
			EntitiesCompleted: entities}
		if _, err := st.Create(ctx, op, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := st.SetOutcome(ctx, name, poller.OutcomeSuccess, time.Now()); err != nil {
			t.Fatal(err)
		}
		return name
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"verify", record("good", 3)}, env(vars), &out, &out); err != nil {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	if !strings.HasPrefix(out.String(), "verified: 3 entities in 1 kind, 397 B in 1 file") || !strings.Contains(out.String(), "Order") ||
		!strings.Contains(out.String(), "~ Kind \"Order\" has 0 entities in the database; the export's files hold 2.") {
		t.Errorf("verify printed:\n%s\nwant 3 Orders verified", out.String())
	}
	out.Reset()
	err := run(ctx, []string{"verify", "short"}, env(vars), &out, &out)
	if !errors.Is(err, poller.ErrNotFound) {
		t.Errorf("verify of an unrecorded id = %v; want not found", err)
	}
	out.Reset()
	err = run(ctx, []string{"verify", record("counted-5", 5)}, env(vars), &out, &out)
	if err != nil || !strings.Contains(out.String(), "~ The operation says it exported 5 entities; its files hold 3.") {
		t.Errorf("verify of an operation that counted 5 = %v:\n%s\nwant the warning, and no failure", err, out.String())
	}
	out.Reset()
	gone := "projects/" + project + "/operations/gone"
	op := poller.Operation{Name: gone, Project: project, Done: true, State: poller.StateSuccessful,
		OutputURL: "gs://testdata/gone/F/F.overall_export_metadata"}
	if _, err := st.Create(ctx, op, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetOutcome(ctx, gone, poller.OutcomeSuccess, time.Now()); err != nil {
		t.Fatal(err)
	}
	err = run(ctx, []string{"verify", gone}, env(vars), &out, &out)
	if !errors.Is(err, errNotVerified) || !strings.HasPrefix(out.String(), "NOT verified: content: export metadata gs://testdata/gone/F/F.overall_export_metadata") {
		t.Errorf("verify of an export whose metadata is gone = %v:\n%s\nwant NOT verified naming the object", err, out.String())
	}
}
