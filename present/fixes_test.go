package present_test

import (
	"strings"
	"testing"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
)

func TestFixFor(t *testing.T) {
	agent := "service-123456789012@gcp-sa-firestore.iam.gserviceaccount.com"
	for _, c := range []struct{ msg, prefix, want string }{
		{agent + " does not have storage.objects.create access to the Google Cloud Storage object. Permission 'storage.objects.create' denied on resource (or it may not exist).", "gs://exp/daily",
			"gcloud storage buckets add-iam-policy-binding gs://exp --member=serviceAccount:" + agent + " --role=roles/storage.objectAdmin"},
		{agent + " does not have storage.buckets.get access to the Google Cloud Storage bucket.", "gs://exp",
			"gcloud storage buckets add-iam-policy-binding gs://exp --member=serviceAccount:" + agent + " --role=roles/storage.legacyBucketReader"},
		{"The caller does not have storage.objects.create access.", "",
			"gcloud storage buckets add-iam-policy-binding gs://BUCKET --member=serviceAccount:service-PROJECT_NUMBER@gcp-sa-firestore.iam.gserviceaccount.com --role=roles/storage.objectAdmin"},
		{"The specified bucket does not exist.", "gs://gone/x", "gcloud storage buckets create gs://gone --location=LOCATION"},
		{"Bucket gone does not exist.", "gs://gone", "gcloud storage buckets create gs://gone --location=LOCATION"},
		{"Bucket is a requester pays bucket but no user project provided.", "gs://rp/a", "gcloud storage buckets update gs://rp --no-requester-pays"},
		{"The bucket location europe-west1 does not match the database location nam5.", "gs://b", "gcloud storage buckets create gs://b-LOCATION --location=LOCATION"},
	} {
		got, ok := present.FixForExport(c.msg, c.prefix)
		if !ok || got != c.want {
			t.Errorf("FixForExport(%q, %q) = %q, %v; want %q", c.msg, c.prefix, got, ok, c.want)
		}
	}
	for _, msg := range []string{"", "Quota exceeded for quota metric 'Export requests'.", "The operation was cancelled."} {
		if got, ok := present.FixFor(msg); ok {
			t.Errorf("FixFor(%q) = %q, want none", msg, got)
		}
	}
}

func TestNotesCarryTheFix(t *testing.T) {
	op := poller.Operation{Name: "projects/p/operations/op1", State: poller.StateFailed, OutputURLPrefix: "gs://exp/daily",
		ErrorCode: 7, ErrorMessage: "service-1@gcp-sa-firestore.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage object."}
	for name, c := range map[string]struct {
		r    poller.Report
		want string
	}{
		"failed": {poller.Report{Outcome: poller.OutcomeFailure, Operation: op},
			"gcloud storage buckets add-iam-policy-binding gs://exp --member=serviceAccount:service-1@gcp-sa-firestore.iam.gserviceaccount.com --role=roles/storage.objectAdmin"},
		"refused": {poller.Report{StartError: "start export: The specified bucket does not exist.", Operation: poller.Operation{OutputURLPrefix: "gs://exp/daily"}},
			"gcloud storage buckets create gs://exp --location=LOCATION"},
	} {
		r, want := c.r, c.want
		var fix *present.Note
		for _, n := range present.Notes(r) {
			if n.Label == "Fix" {
				fix = &n
			}
		}
		if fix == nil || fix.Text != want || !fix.Command {
			t.Errorf("%s: Fix note %+v, want the command %q", name, fix, want)
		}
	}
	ok := poller.Report{Outcome: poller.OutcomeFailure, Operation: poller.Operation{ErrorMessage: "Quota exceeded."}}
	for _, n := range present.Notes(ok) {
		if n.Label == "Fix" || strings.Contains(n.Text, "gcloud storage") {
			t.Errorf("an unknown error got a fix: %+v", n)
		}
	}
}
