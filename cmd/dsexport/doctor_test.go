package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/dsexport/dsexport/admin/firestorefake"
	"github.com/dsexport/dsexport/poller"
)

// TestDoctorCommand runs dsexport doctor against fake-gcs-server (reached
// through STORAGE_EMULATOR_HOST, as the storage client does) and the
// Firestore Admin API fake: a missing bucket fails with its fix (exit 1), an
// unknown target is a configuration mistake (exit 2).
func TestDoctorCommand(t *testing.T) {
	gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true, BucketsLocation: "US"})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(gcs.HTTPHandler())
	t.Cleanup(front.Close)
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(front.URL, "http://"))
	fs := firestorefake.New(t)
	fs.AddDatabase("doctor-cli", poller.DefaultDatabase)
	env := map[string]string{
		"DSEXPORT_PROJECT": "doctor-cli", "DSEXPORT_OUTPUT_PREFIX": "gs://doctor-cli-missing/daily",
		"DSEXPORT_FIRESTORE_ENDPOINT": fs.URL(), "DSEXPORT_PROJECT_NUMBER": "42",
	}
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"doctor"}, getenvWith(env), &stdout, &stderr)
	var ue *usageError
	if !errors.Is(err, errChecksFailed) || errors.As(err, &ue) {
		t.Fatalf("doctor with a missing bucket: %v (exit 1 wanted); stderr %s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"NAME", "TARGET", "FIX", "bucket", "FAIL", "gcloud storage buckets create gs://doctor-cli-missing --location=US"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	stdout.Reset()
	err = run(context.Background(), []string{"doctor", "--json"}, getenvWith(env), &stdout, &stderr)
	var checks []poller.Check
	if jerr := json.Unmarshal(stdout.Bytes(), &checks); jerr != nil || !errors.Is(err, errChecksFailed) || len(checks) == 0 || checks[0].Fix == "" {
		t.Errorf("--json: %v, %v, %s", err, jerr, stdout.String())
	}

	err = run(context.Background(), []string{"doctor", "--target", "nope"}, getenvWith(env), &stdout, &stderr)
	if !errors.As(err, &ue) {
		t.Errorf("--target nope: %v, want a usage error (exit 2)", err)
	}
	env["DSEXPORT_PROJECT_NUMBER"] = "forty-two"
	err = run(context.Background(), []string{"doctor"}, getenvWith(env), &stdout, &stderr)
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "DSEXPORT_PROJECT_NUMBER") {
		t.Errorf("a bad project number: %v, want a usage error naming DSEXPORT_PROJECT_NUMBER", err)
	}
}
