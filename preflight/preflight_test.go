package preflight_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/dsexport/dsexport/admin"
	"github.com/dsexport/dsexport/admin/firestorefake"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/preflight"
	"github.com/dsexport/dsexport/present"
	"github.com/fsouza/fake-gcs-server/fakestorage"
)

const (
	project = "doctor-proj"
	number  = "123456789012"
	agent   = "serviceAccount:service-123456789012@gcp-sa-firestore.iam.gserviceaccount.com"
)

// setup is a healthy deployment: a (default) database in nam5, its bucket
// in US with the service agent as objectAdmin and legacyBucketReader.
type setup struct {
	gcs *gcs
	fs  *firestorefake.Server
	cfg preflight.Config
	tgt poller.Target
}

func healthy(t *testing.T) *setup {
	t.Helper()
	s := &setup{gcs: newGCS(t), fs: firestorefake.New(t)}
	s.fs.AddDatabase(project, poller.DefaultDatabase)
	s.gcs.bucket("doctor-exports", "US")
	s.gcs.bind("doctor-exports", "roles/storage.objectAdmin", agent)
	s.gcs.bind("doctor-exports", "roles/storage.legacyBucketReader", agent)
	fsAPI, err := admin.NewFirestore(context.Background(), s.fs.URL(), http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	s.cfg = preflight.Config{
		Storage: s.gcs.client(t), Databases: fsAPI,
		ProjectNumber: func(p string) string {
			if p == project {
				return number
			}
			return ""
		},
	}
	s.tgt = poller.Target{Name: "prod", Project: project, Database: poller.DefaultDatabase,
		Export: &poller.ExportRequest{Project: project, OutputURLPrefix: "gs://doctor-exports/daily"}}
	return s
}

func (s *setup) run(t *testing.T) []poller.Check {
	t.Helper()
	checks := poller.Doctor{Checks: preflight.Checks(s.cfg, []poller.Target{s.tgt})}.Run(context.Background())
	for _, c := range checks {
		t.Logf("%s/%s ok=%v warn=%v %s | %s", c.Target, c.Name, c.OK, c.Warning, c.Detail, c.Fix)
	}
	return checks
}

func find(t *testing.T, checks []poller.Check, name string) poller.Check {
	t.Helper()
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, checks)
	return poller.Check{}
}

// only asserts that name is the one failing check, with fix.
func only(t *testing.T, checks []poller.Check, name, fix string) poller.Check {
	t.Helper()
	c := find(t, checks, name)
	if c.OK || c.Fix != fix {
		t.Errorf("%s: ok=%v fix %q, want failed with %q", name, c.OK, c.Fix, fix)
	}
	for _, o := range checks {
		if o.Name != name && !o.OK {
			t.Errorf("%s failed too: %s", o.Name, o.Detail)
		}
	}
	if c.Target != "prod" {
		t.Errorf("%s: target %q, want prod", name, c.Target)
	}
	return c
}

func TestHealthyAllOK(t *testing.T) {
	s := healthy(t)
	checks := s.run(t)
	if len(checks) != 6 {
		t.Fatalf("%d checks, want 6 (bucket, requester pays, location, prefix, own, agent)", len(checks))
	}
	for _, c := range checks {
		if !c.OK || c.Warning || c.Fix != "" || c.Target != "prod" {
			t.Errorf("%s: %+v, want OK without warning or fix", c.Name, c)
		}
	}
}

func TestBucketMissing(t *testing.T) {
	s := healthy(t)
	s.tgt.Export.OutputURLPrefix = "gs://no-such-bucket/daily"
	checks := s.run(t)
	c := find(t, checks, preflight.CheckBucket)
	if want := "gcloud storage buckets create gs://no-such-bucket --location=US"; c.OK || c.Fix != want {
		t.Errorf("bucket: %+v, want failed with %q", c, want)
	}
}

func TestRequesterPays(t *testing.T) {
	s := healthy(t)
	s.gcs.payer["doctor-exports"] = true
	only(t, s.run(t), preflight.CheckRequesterPays, "gcloud storage buckets update gs://doctor-exports --no-requester-pays")
}

func TestLocationMismatch(t *testing.T) {
	s := healthy(t)
	s.gcs.location["doctor-exports"] = "EU"
	c := only(t, s.run(t), preflight.CheckLocation, "gcloud storage buckets create gs://doctor-exports-nam5 --location=US")
	if !strings.Contains(c.Detail, "EU") || !strings.Contains(c.Detail, "nam5") {
		t.Errorf("detail %q does not name both locations", c.Detail)
	}
}

func TestLocationRegionalDatabase(t *testing.T) {
	s := healthy(t)
	db := s.fs.AddDatabase(project, "analytics")
	db.Location = "europe-west3"
	s.fs.SetDatabase(db)
	s.tgt.Database = "analytics"
	only(t, s.run(t), preflight.CheckLocation, "gcloud storage buckets create gs://doctor-exports-europe-west3 --location=europe-west3")
	s.gcs.location["doctor-exports"] = "EU"
	if c := find(t, s.run(t), preflight.CheckLocation); !c.OK || c.Warning {
		t.Errorf("europe-west3 in EU: %+v, want OK", c)
	}
}

func TestLocationUnknownWarns(t *testing.T) {
	s := healthy(t)
	s.gcs.location["doctor-exports"] = "MARS-BASE"
	c := find(t, s.run(t), preflight.CheckLocation)
	if !c.OK || !c.Warning || c.Fix != "" {
		t.Errorf("unknown location: %+v, want OK with a warning", c)
	}
}

func TestOwnAccessMissing(t *testing.T) {
	s := healthy(t)
	s.gcs.held["doctor-exports"] = []string{"storage.objects.list"}
	c := only(t, s.run(t), preflight.CheckOwnAccess,
		"gcloud storage buckets add-iam-policy-binding gs://doctor-exports --member=serviceAccount:DSEXPORT_SERVICE_ACCOUNT --role=roles/storage.legacyBucketReader"+
			" && gcloud storage buckets add-iam-policy-binding gs://doctor-exports --member=serviceAccount:DSEXPORT_SERVICE_ACCOUNT --role=roles/storage.objectViewer")
	// Reading an export back (dsexport verify) needs objects.get too.
	if !strings.Contains(c.Detail, "storage.buckets.get") || !strings.Contains(c.Detail, "storage.objects.get") || strings.Contains(c.Detail, "storage.objects.list") {
		t.Errorf("detail %q: want storage.buckets.get and storage.objects.get named missing", c.Detail)
	}
}

func TestServiceAgentMissing(t *testing.T) {
	s := healthy(t)
	s.gcs.bindings["doctor-exports"] = map[string][]string{
		// objectAdmin alone lacks storage.buckets.get; another project's
		// agent counts for nothing.
		"roles/storage.objectAdmin": {agent},
		"roles/storage.admin":       {"serviceAccount:service-999@gcp-sa-firestore.iam.gserviceaccount.com"},
	}
	want := "gcloud storage buckets add-iam-policy-binding gs://doctor-exports --member=" + agent + " --role=roles/storage.objectAdmin" +
		" && gcloud storage buckets add-iam-policy-binding gs://doctor-exports --member=" + agent + " --role=roles/storage.legacyBucketReader"
	c := only(t, s.run(t), preflight.CheckServiceAgent, want)
	if !strings.Contains(c.Detail, "storage.buckets.get") || strings.Contains(c.Detail, "storage.objects.create") {
		t.Errorf("detail %q: want storage.buckets.get missing, not storage.objects.create", c.Detail)
	}
	s.gcs.bindings["doctor-exports"] = map[string][]string{}
	c = find(t, s.run(t), preflight.CheckServiceAgent)
	if c.OK || !strings.Contains(c.Detail, "storage.objects.create") {
		t.Errorf("no binding: %+v, want storage.objects.create missing", c)
	}
}

func TestServiceAgentSkippedWithoutNumber(t *testing.T) {
	s := healthy(t)
	s.cfg.ProjectNumber = nil
	c := find(t, s.run(t), preflight.CheckServiceAgent)
	if !c.OK || !c.Warning || !strings.Contains(c.Detail, "DSEXPORT_PROJECT_NUMBER") {
		t.Errorf("%+v, want a skip that names DSEXPORT_PROJECT_NUMBER", c)
	}
	if s.gcs.iamCalls != 1 { // only testPermissions
		t.Errorf("%d IAM calls, want 1", s.gcs.iamCalls)
	}
}

func TestPrefixIsAnExportFolder(t *testing.T) {
	s := healthy(t)
	c := find(t, s.run(t), preflight.CheckPrefix)
	if !strings.Contains(c.Detail, "empty") {
		t.Errorf("empty prefix: %+v", c)
	}
	s.gcs.fake.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "doctor-exports", Name: "daily/2026-01-01T03:00:00_00001/2026-01-01T03:00:00_00001.overall_export_metadata"}, Content: []byte("x")})
	c = find(t, s.run(t), preflight.CheckPrefix)
	if !c.OK || c.Warning || !strings.Contains(c.Detail, "earlier exports") {
		t.Errorf("prefix with earlier exports: %+v, want OK", c)
	}
	s.gcs.fake.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "doctor-exports", Name: "daily/x.overall_export_metadata"}, Content: []byte("x")})
	c = find(t, s.run(t), preflight.CheckPrefix)
	if !c.OK || !c.Warning || !strings.Contains(c.Detail, "export's folder") {
		t.Errorf("prefix that is an export folder: %+v, want a warning", c)
	}
}

// TestReportsNameTheDoctorsFixes holds present's fixes for the APIs'
// refusals to the commands the checks print.
func TestReportsNameTheDoctorsFixes(t *testing.T) {
	for msg, want := range map[string]string{
		preflight.ServiceAgent(number) + " does not have storage.objects.create access to the Google Cloud Storage object.": preflight.AgentBinding("b", number, "roles/storage.objectAdmin"),
		preflight.ServiceAgent(number) + " does not have storage.buckets.get access to the Google Cloud Storage bucket.":    preflight.AgentBinding("b", number, "roles/storage.legacyBucketReader"),
		"Bucket is a requester pays bucket but no user project provided.":                                                   preflight.RequesterPaysFix("b"),
		"The specified bucket does not exist.":                                                                              preflight.CreateFix("b", ""),
	} {
		if got, ok := present.FixForExport(msg, "gs://b/daily"); !ok || got != want {
			t.Errorf("present.FixForExport(%q) = %q, %v; the doctor says %q", msg, got, ok, want)
		}
	}
}
