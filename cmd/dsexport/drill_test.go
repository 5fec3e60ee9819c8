package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsexport/dsexport/count"
	"github.com/dsexport/dsexport/internal/emulatortest"
)

// commitREST writes entities of kinds (kind → how many) into project's
// (default) database through the emulator's REST :commit.
func commitREST(t *testing.T, host, project string, kinds map[string]int) {
	t.Helper()
	var muts []map[string]any
	for kind, n := range kinds {
		for i := range n {
			muts = append(muts, map[string]any{"upsert": map[string]any{
				"key": map[string]any{"partitionId": map[string]any{"projectId": project},
					"path": []map[string]any{{"kind": kind, "name": fmt.Sprintf("%s-%d", kind, i)}}},
				"properties": map[string]any{"n": map[string]any{"integerValue": fmt.Sprint(i)}}}})
		}
	}
	body, _ := json.Marshal(map[string]any{"mode": "NON_TRANSACTIONAL", "mutations": muts})
	resp, err := http.Post("http://"+host+"/v1/projects/"+project+":commit", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("commit: %s", resp.Status)
	}
}

// TestDrillEndToEnd is issue 12's local cycle: an export from the Datastore
// emulator is verified from its own files (real counts, not the emulator's
// empty progress), then a drill imports it into a scratch project on the
// emulator, counts each kind there, matches them, empties the scratch
// database and reports its restore time; a drill of the same export cut
// short fails and names the step.
func TestDrillEndToEnd(t *testing.T) {
	host := emulatortest.Host(t)
	dir := emulatortest.Dir()
	if dir == "" {
		dir = os.Getenv("DATASTORE_EMULATOR_DIR")
	}
	if dir == "" {
		t.Fatal("the Datastore emulator's directory is not known: set DATASTORE_EMULATOR_DIR")
	}
	project := emulatortest.Project(t)
	scratch := project + "-drill"
	commitREST(t, host, project, map[string]int{"Order": 3, "Line": 2})
	config := filepath.Join(t.TempDir(), "targets.yaml")
	if err := os.WriteFile(config, []byte(`
store: {project: `+project+`-ops, database: dsexport}
targets:
  - name: local
    project: `+project+`
    export: {prefix: gs://local-backups/`+project+`}
    drill: {every: 7d, project: `+scratch+`, database: "(default)"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"DSEXPORT_CONFIG": config, "DATASTORE_EMULATOR_HOST": host,
		"DSEXPORT_ADMIN_ENDPOINT": "http://" + host, "DSEXPORT_VERIFY": "on"}
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, []string{"export", "--wait", "--target", "local"}, env(vars), &out, &out); err != nil {
		t.Fatalf("export: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "verified: 5 entities in 2 kinds") {
		t.Fatalf("export report lacks the verified counts:\n%s", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"drill", "--target", "local", "--every", "50ms"}, env(vars), &out, &out); err != nil {
		t.Fatalf("drill: %v\n%s", err, out.String())
	}
	for _, want := range []string{"step 3/7 import", "local: Restore verified in ", ": 5 entities in 2 kinds", "Restore time (RTO)", "5 of 5"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("drill output lacks %q:\n%s", want, out.String())
		}
	}
	counter, err := count.New(ctx, count.WithEmulatorHost(host))
	if err != nil {
		t.Fatal(err)
	}
	defer counter.Close()
	for _, kind := range []string{"Order", "Line"} {
		if n, err := counter.Count(ctx, scratch, "", "", kind); err != nil || n != 0 {
			t.Errorf("scratch %s after the drill: %d, %v; want emptied", kind, n, err)
		}
	}

	// Cut the export's output file short: the drill of it must fail, saying where.
	var outputs []string
	filepath.WalkDir(filepath.Join(dir, "gs:", "local-backups", project), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), "output-") {
			outputs = append(outputs, p)
		}
		return nil
	})
	if len(outputs) == 0 {
		t.Fatal("no output file of the export found")
	}
	for _, p := range outputs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b[:len(b)/2], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	err = run(ctx, []string{"drill", "--target", "local", "--every", "50ms"}, env(vars), &out, &out)
	if !errors.Is(err, errDrillFailed) || !strings.Contains(out.String(), "local: Restore drill failed at step import") ||
		!strings.Contains(out.String(), "Invalid record") {
		t.Fatalf("drill of a truncated export = %v; want it failed at import, with the emulator's refusal:\n%s", err, out.String())
	}
	t.Logf("drill of a truncated export:\n%s", out.String())
}
