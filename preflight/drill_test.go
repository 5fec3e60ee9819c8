package preflight_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/preflight"
)

const (
	scratch       = "doctor-scratch"
	scratchNumber = "555000111222"
	scratchAgent  = "serviceAccount:service-555000111222@gcp-sa-firestore.iam.gserviceaccount.com"
	ownEmail      = "dsexport@doctor-proj.iam.gserviceaccount.com"
)

// drilled is healthy with a restore drill into a database dsexport creates
// in project doctor-scratch, where it holds what the drill needs, and the
// scratch project's service agent reads the bucket.
func drilled(t *testing.T) (*setup, *crm) {
	t.Helper()
	s := healthy(t)
	c := newCRM(t)
	c.hold(project, "datastore.databases.getMetadata")
	c.hold(scratch, "datastore.databases.import", "datastore.operations.get", "datastore.entities.list",
		"datastore.databases.create", "datastore.databases.delete", "datastore.entities.delete")
	s.gcs.bind("doctor-exports", "roles/storage.objectViewer", scratchAgent)
	s.gcs.bind("doctor-exports", "roles/storage.legacyBucketReader", scratchAgent)
	s.cfg.ResourceManager = c.client(t)
	s.cfg.OwnIdentity = ownEmail
	s.cfg.ProjectNumber = func(p string) string {
		return map[string]string{project: number, scratch: scratchNumber}[p]
	}
	s.tgt.Drill = &poller.DrillSpec{Project: scratch}
	return s, c
}

func sameSet(got, want []string) bool {
	return len(got) == len(want) && !slices.ContainsFunc(want, func(w string) bool { return !slices.Contains(got, w) })
}

func TestDrillAllHeld(t *testing.T) {
	s, c := drilled(t)
	checks := s.run(t)
	if len(checks) != 8 {
		t.Fatalf("%d checks, want 8 (the export's 6, drill permissions, drill service agent)", len(checks))
	}
	for _, ch := range checks {
		if !ch.OK || ch.Warning || ch.Fix != "" {
			t.Errorf("%s: %+v, want OK without warning or fix", ch.Name, ch)
		}
	}
	if got := find(t, checks, preflight.CheckDrillOwn).Detail; !strings.Contains(got, ownEmail) || !strings.Contains(got, scratch) {
		t.Errorf("drill permissions detail %q names neither the identity nor the scratch project", got)
	}
	if got := find(t, checks, preflight.CheckDrillAgent).Detail; !strings.Contains(got, preflight.ServiceAgent(scratchNumber)) {
		t.Errorf("drill service agent detail %q does not name the scratch project's agent", got)
	}
	// The source location for the new database; the rest on the scratch project.
	if got := c.askedOf(project); !sameSet(got, []string{"datastore.databases.getMetadata"}) {
		t.Errorf("asked on %s: %v", project, got)
	}
	if got, want := c.askedOf(scratch), []string{"datastore.databases.import", "datastore.operations.get", "datastore.entities.list",
		"datastore.databases.create", "datastore.databases.delete"}; !sameSet(got, want) {
		t.Errorf("asked on %s: %v, want %v", scratch, got, want)
	}
}

func TestDrillPermissionsMissing(t *testing.T) {
	s, c := drilled(t)
	c.hold(scratch, "datastore.databases.import", "datastore.entities.list")
	ch := only(t, s.run(t), preflight.CheckDrillOwn,
		"gcloud projects add-iam-policy-binding doctor-scratch --member=serviceAccount:"+ownEmail+" --role=roles/datastore.owner")
	for _, want := range []string{"datastore.databases.create", "datastore.databases.delete", "datastore.operations.get", scratch, ownEmail} {
		if !strings.Contains(ch.Detail, want) {
			t.Errorf("detail %q lacks %q", ch.Detail, want)
		}
	}
	if strings.Contains(ch.Detail, "datastore.databases.import") || strings.Contains(ch.Detail, "getMetadata") {
		t.Errorf("detail %q names a permission that is held", ch.Detail)
	}

	// Both projects lacking, dsexport's email unknown: a fix for each.
	c.hold(project)
	s.cfg.OwnIdentity = ""
	ch = only(t, s.run(t), preflight.CheckDrillOwn,
		"gcloud projects add-iam-policy-binding doctor-proj --member=serviceAccount:DSEXPORT_SERVICE_ACCOUNT --role=roles/datastore.owner"+
			" && gcloud projects add-iam-policy-binding doctor-scratch --member=serviceAccount:DSEXPORT_SERVICE_ACCOUNT --role=roles/datastore.owner")
	if !strings.Contains(ch.Detail, "dsexport's service account") || !strings.Contains(ch.Detail, "datastore.databases.getMetadata on project doctor-proj") {
		t.Errorf("detail %q", ch.Detail)
	}
}

// TestDrillExistingDatabase: into an existing scratch database dsexport
// neither creates nor deletes one but empties it, and reads no source
// location; a created database in a named location reads none either.
func TestDrillExistingDatabase(t *testing.T) {
	s, c := drilled(t)
	s.tgt.Drill.Database = "drill-scratch"
	c.hold(scratch, "datastore.databases.import", "datastore.operations.get", "datastore.entities.list")
	ch := only(t, s.run(t), preflight.CheckDrillOwn, preflight.DrillFix(scratch, ownEmail))
	if !strings.Contains(ch.Detail, "datastore.entities.delete") {
		t.Errorf("detail %q: want datastore.entities.delete missing", ch.Detail)
	}
	if got, want := c.askedOf(scratch), []string{"datastore.databases.import", "datastore.operations.get", "datastore.entities.list", "datastore.entities.delete"}; !sameSet(got, want) {
		t.Errorf("asked on %s: %v, want %v", scratch, got, want)
	}
	if got := c.askedOf(project); got != nil {
		t.Errorf("asked on the source project: %v, want nothing", got)
	}

	s, c = drilled(t)
	s.tgt.Drill.Location = "nam5"
	if ch := find(t, s.run(t), preflight.CheckDrillOwn); !ch.OK {
		t.Errorf("created in nam5: %+v, want OK", ch)
	}
	if got := c.askedOf(project); got != nil || c.calls != 1 {
		t.Errorf("created in a named location: asked on the source %v, %d calls; want none and 1", got, c.calls)
	}
}

// TestDrillIntoOwnProject: the target's own project's agent is the
// export's, checked once; one project is asked for everything.
func TestDrillIntoOwnProject(t *testing.T) {
	s, c := drilled(t)
	s.tgt.Drill.Project = ""
	c.hold(project, "datastore.databases.getMetadata", "datastore.databases.import", "datastore.operations.get",
		"datastore.entities.list", "datastore.databases.create", "datastore.databases.delete")
	checks := s.run(t)
	ch := find(t, checks, preflight.CheckDrillAgent)
	if !ch.OK || ch.Warning || !strings.Contains(ch.Detail, preflight.CheckServiceAgent) || strings.Contains(ch.Detail, "\n") {
		t.Errorf("drill service agent: %+v, want one passing line pointing at %q", ch, preflight.CheckServiceAgent)
	}
	if s.gcs.iamCalls != 2 { // the export's testPermissions and policy, no second read
		t.Errorf("%d bucket IAM calls, want 2", s.gcs.iamCalls)
	}
	if ch := find(t, checks, preflight.CheckDrillOwn); !ch.OK || c.calls != 1 || len(c.askedOf(project)) != 6 {
		t.Errorf("drill permissions: %+v after %d calls asking %v; want OK from one call asking 6", ch, c.calls, c.askedOf(project))
	}
}

func TestDrillAgent(t *testing.T) {
	s, _ := drilled(t)
	// objectViewer alone lacks storage.buckets.get; the source's agent's
	// roles count for nothing.
	s.gcs.bindings["doctor-exports"]["roles/storage.legacyBucketReader"] = []string{agent}
	ch := only(t, s.run(t), preflight.CheckDrillAgent,
		"gcloud storage buckets add-iam-policy-binding gs://doctor-exports --member="+scratchAgent+" --role=roles/storage.objectViewer"+
			" && gcloud storage buckets add-iam-policy-binding gs://doctor-exports --member="+scratchAgent+" --role=roles/storage.legacyBucketReader")
	if !strings.Contains(ch.Detail, "storage.buckets.get") || strings.Contains(ch.Detail, "storage.objects.get") || strings.Contains(ch.Detail, "storage.objects.create") {
		t.Errorf("detail %q: want storage.buckets.get missing alone", ch.Detail)
	}

	s.cfg.ProjectNumber = func(p string) string { return map[string]string{project: number}[p] }
	ch = find(t, s.run(t), preflight.CheckDrillAgent)
	if !ch.OK || !ch.Warning || !strings.Contains(ch.Detail, "DSEXPORT_PROJECT_NUMBER") || !strings.Contains(ch.Detail, scratch) {
		t.Errorf("%+v, want a skip naming the scratch project and DSEXPORT_PROJECT_NUMBER", ch)
	}
}

// TestDrillChecksPresence: without the client the permissions check is
// not made, and a target without a drill has no drill check.
func TestDrillChecksPresence(t *testing.T) {
	s, _ := drilled(t)
	s.cfg.ResourceManager = nil
	for _, ch := range s.run(t) {
		if ch.Name == preflight.CheckDrillOwn {
			t.Errorf("drill permissions without a Resource Manager client: %+v", ch)
		}
	}
	s.tgt.Drill = nil
	if n := len(preflight.DrillChecks(s.cfg, s.tgt)); n != 0 {
		t.Errorf("%d drill checks of a target without a drill", n)
	}
}
