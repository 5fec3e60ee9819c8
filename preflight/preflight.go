// Package preflight is the adapter behind dsexport doctor: the checks that
// the Google services a target's exports need are set up (its bucket, its
// location, the permissions of dsexport and of the Firestore service agent,
// those a restore drill needs (drill.go), Slack, the Cloud Tasks queue), as
// poller.CheckFunc values that a
// poller.Doctor runs. Each failed check names the command that fixes it.
//
// It lives at the repository root, apart from admin/, because it talks to
// Cloud Storage, Slack and Cloud Tasks as well as the Admin APIs; the
// domain (poller.Check, poller.Doctor) holds no Google type.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/cloudresourcemanager/v3"
	"google.golang.org/api/iterator"

	"github.com/dsexport/dsexport/poller"
)

// Databases reads a database's location: admin.Firestore's
// projects.databases.get.
type Databases interface {
	Database(ctx context.Context, project, database string) (poller.DatabaseInfo, error)
}

// Config is what the checks talk to. A nil client skips its checks.
type Config struct {
	Storage   *storage.Client
	Databases Databases
	// ProjectNumber gives a project's number, for the Firestore service
	// agent's address; nil or "" skips the service agent check with a note.
	ProjectNumber func(project string) string
	// ResourceManager tests dsexport's own permissions on the projects a
	// restore drill uses (the drill permissions check); nil skips it.
	ResourceManager *cloudresourcemanager.Service
	// OwnIdentity is the email of dsexport's own service account, for the
	// fixes that grant it a role; "" : the fix names it in words.
	OwnIdentity string
	// Slack and the Cloud Tasks queue have checks of their own, apart
	// from the targets': SlackChecks and TasksCheck.
}

// The names of the checks, as the table and /api/doctor show them. The
// drill checks are those of a target with a restore drill (DrillChecks).
const (
	CheckBucket        = "bucket"
	CheckRequesterPays = "requester pays"
	CheckLocation      = "location"
	CheckPrefix        = "prefix"
	CheckOwnAccess     = "dsexport access"
	CheckServiceAgent  = "service agent access"
	CheckDrillOwn      = "drill permissions"
	CheckDrillAgent    = "drill service agent"
	CheckSlackAuth     = "slack token"
	CheckSlackChannel  = "slack channel"
	CheckQueue         = "tasks queue"
)

// OwnPermissions are the permissions dsexport's own identity needs on a
// bucket: reading its attributes (this check), listing exports and reading
// their files back (dsexport verify).
var OwnPermissions = []string{"storage.buckets.get", "storage.objects.list", "storage.objects.get"}

// AgentPermissions are the permissions the Firestore service agent needs on
// the bucket: write an export (create), read one back for an import (get,
// list), and read the bucket (Firestore checks it before it exports).
var AgentPermissions = []string{"storage.buckets.get", "storage.objects.create", "storage.objects.get", "storage.objects.list"}

// rolePermissions are the predefined Cloud Storage roles that grant some of
// AgentPermissions, with those they grant. Source: "IAM roles for Cloud
// Storage", https://cloud.google.com/storage/docs/access-control/iam-roles
// (roles/storage.objectAdmin has no storage.buckets.get; the legacy bucket
// roles have it). A role not in the table counts for nothing: the check may
// then fail a binding that works, and says which roles it counts.
var rolePermissions = map[string][]string{
	"roles/storage.admin":              {"storage.buckets.get", "storage.objects.create", "storage.objects.get", "storage.objects.list"},
	"roles/storage.objectAdmin":        {"storage.objects.create", "storage.objects.get", "storage.objects.list"},
	"roles/storage.objectCreator":      {"storage.objects.create"},
	"roles/storage.objectViewer":       {"storage.objects.get", "storage.objects.list"},
	"roles/storage.objectUser":         {"storage.objects.create", "storage.objects.get", "storage.objects.list"},
	"roles/storage.legacyBucketOwner":  {"storage.buckets.get", "storage.objects.create", "storage.objects.list"},
	"roles/storage.legacyBucketWriter": {"storage.buckets.get", "storage.objects.create", "storage.objects.list"},
	"roles/storage.legacyBucketReader": {"storage.buckets.get", "storage.objects.list"},
	"roles/storage.legacyObjectReader": {"storage.objects.get"},
	"roles/storage.legacyObjectOwner":  {"storage.objects.get"},
}

// ServiceAgent is the Firestore service agent of the project numbered
// number, the identity that writes exports and reads imports.
func ServiceAgent(number string) string {
	return "service-" + number + "@gcp-sa-firestore.iam.gserviceaccount.com"
}

// AgentFix is the command granting the service agent of project number the
// roles it needs on bucket: objectAdmin for the objects, legacyBucketReader
// for storage.buckets.get.
func AgentFix(bucket, number string) string {
	if number == "" {
		number = "PROJECT_NUMBER"
	}
	return AgentBinding(bucket, number, "roles/storage.objectAdmin") + " && " + AgentBinding(bucket, number, "roles/storage.legacyBucketReader")
}

// AgentBinding is the command binding role on bucket to the service agent.
func AgentBinding(bucket, number, role string) string {
	return fmt.Sprintf("gcloud storage buckets add-iam-policy-binding gs://%s --member=serviceAccount:%s --role=%s", bucket, ServiceAgent(number), role)
}

// CreateFix is the command creating bucket in location ("" : LOCATION).
func CreateFix(bucket, location string) string {
	if location == "" {
		location = "LOCATION"
	}
	return fmt.Sprintf("gcloud storage buckets create gs://%s --location=%s", bucket, location)
}

// RequesterPaysFix is the command turning Requester Pays off on bucket.
func RequesterPaysFix(bucket string) string {
	return fmt.Sprintf("gcloud storage buckets update gs://%s --no-requester-pays", bucket)
}

// OwnFix is the commands granting dsexport's own service account what it
// needs on bucket: roles/storage.legacyBucketReader (buckets.get,
// objects.list) and roles/storage.objectViewer (objects.get).
func OwnFix(bucket string) string {
	const grant = "gcloud storage buckets add-iam-policy-binding gs://%s --member=serviceAccount:DSEXPORT_SERVICE_ACCOUNT --role=%s"
	return fmt.Sprintf(grant, bucket, "roles/storage.legacyBucketReader") + " && " + fmt.Sprintf(grant, bucket, "roles/storage.objectViewer")
}

// Checks are the checks of targets' exports: for each target with an
// export, its bucket (exists, not Requester Pays, in a location compatible
// with the database's), its prefix, dsexport's own access and the service
// agent's; then, for a target with a restore drill, DrillChecks. Targets
// that only watch backups have none.
func Checks(cfg Config, targets []poller.Target) []poller.CheckFunc {
	var out []poller.CheckFunc
	for _, t := range targets {
		if t.Export == nil || t.Export.OutputURLPrefix == "" {
			continue
		}
		bucket, path := splitPrefix(t.Export.OutputURLPrefix)
		if cfg.Storage != nil {
			out = append(out,
				poller.CheckFunc{Name: CheckBucket, Target: t.Name, Run: func(ctx context.Context) ([]poller.Check, error) {
					return bucketChecks(ctx, cfg, t, bucket)
				}},
				poller.CheckFunc{Name: CheckPrefix, Target: t.Name, Run: func(ctx context.Context) ([]poller.Check, error) {
					return prefixCheck(ctx, cfg, bucket, path)
				}},
				poller.CheckFunc{Name: CheckOwnAccess, Target: t.Name, Run: func(ctx context.Context) ([]poller.Check, error) {
					return ownCheck(ctx, cfg, bucket)
				}},
				poller.CheckFunc{Name: CheckServiceAgent, Target: t.Name, Run: func(ctx context.Context) ([]poller.Check, error) {
					return agentCheck(ctx, cfg, t.Project, bucket)
				}},
			)
		}
		out = append(out, DrillChecks(cfg, t)...)
	}
	return out
}

// splitPrefix cuts gs://bucket/path into its bucket and path (no trailing
// slash). Prefixes are validated when the configuration is read.
func splitPrefix(prefix string) (bucket, path string) {
	rest := strings.TrimPrefix(prefix, "gs://")
	bucket, path, _ = strings.Cut(rest, "/")
	return bucket, strings.TrimSuffix(path, "/")
}

// bucketChecks reads the bucket's attributes once: it exists, is not
// Requester Pays (Firestore refuses to export to such a bucket), and is
// where the database is.
func bucketChecks(ctx context.Context, cfg Config, t poller.Target, bucket string) ([]poller.Check, error) {
	dbLoc, dbErr := databaseLocation(ctx, cfg, t)
	attrs, err := cfg.Storage.Bucket(bucket).Attrs(ctx)
	if errors.Is(err, storage.ErrBucketNotExist) {
		return []poller.Check{{Name: CheckBucket, Detail: fmt.Sprintf("bucket gs://%s does not exist", bucket), Fix: CreateFix(bucket, bucketLocationFor(dbLoc))}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read bucket gs://%s: %w", bucket, err)
	}
	out := []poller.Check{{Name: CheckBucket, OK: true, Detail: fmt.Sprintf("gs://%s exists in %s", bucket, attrs.Location)}}
	if attrs.RequesterPays {
		out = append(out, poller.Check{Name: CheckRequesterPays, Detail: fmt.Sprintf("gs://%s is Requester Pays: exports and imports cannot use it", bucket), Fix: RequesterPaysFix(bucket)})
	} else {
		out = append(out, poller.Check{Name: CheckRequesterPays, OK: true, Detail: "Requester Pays is off"})
	}
	loc := poller.Check{Name: CheckLocation}
	switch c := Compatible(dbLoc, attrs.Location); {
	case dbErr != nil:
		loc.OK, loc.Warning, loc.Detail = true, true, fmt.Sprintf("the database's location is unknown: %v", dbErr)
	case c == Same:
		loc.OK, loc.Detail = true, fmt.Sprintf("bucket in %s holds database location %s", attrs.Location, dbLoc)
	case c == Different:
		loc.Detail = fmt.Sprintf("bucket gs://%s is in %s, the database %s in %s: export to a bucket in the database's location", bucket, attrs.Location, poller.Scope(t.Project, t.Database), dbLoc)
		loc.Fix = CreateFix(bucket+"-"+strings.ToLower(dbLoc), bucketLocationFor(dbLoc))
	default:
		loc.OK, loc.Warning, loc.Detail = true, true, fmt.Sprintf("cannot tell whether bucket location %s holds database location %s", attrs.Location, dbLoc)
	}
	return append(out, loc), nil
}

// databaseLocation is the target's database's locationId.
func databaseLocation(ctx context.Context, cfg Config, t poller.Target) (string, error) {
	if cfg.Databases == nil {
		return "", errors.New("the Firestore Admin API is not configured")
	}
	info, err := cfg.Databases.Database(ctx, t.Project, t.Database)
	if err != nil {
		return "", err
	}
	return info.Location, nil
}

// bucketLocationFor is the Cloud Storage location to create a bucket in
// for a database in dbLoc: the multi-region holding a Firestore
// multi-region, else the region itself.
func bucketLocationFor(dbLoc string) string {
	if locs, ok := firestoreMultiRegions[strings.ToLower(dbLoc)]; ok {
		return locs[0]
	}
	return dbLoc
}

// prefixCheck lists one object under the prefix. Neither Admin API refuses
// nor overwrites a prefix already written by dsexport: the Datastore Admin
// API always nests an export in a folder of its own under the prefix, and
// the Firestore Admin API does so under a bare bucket, dsexport naming the
// folder under a prefix with a path (admin.ExportFolder). What is worth
// saying is a prefix that is itself an export's folder (it holds
// .overall_export_metadata files directly): a warning, since new exports
// then nest inside an old one's folder.
func prefixCheck(ctx context.Context, cfg Config, bucket, path string) ([]poller.Check, error) {
	q := &storage.Query{Delimiter: "/"}
	if path != "" {
		q.Prefix = path + "/"
	}
	it := cfg.Storage.Bucket(bucket).Objects(ctx, q)
	n := 0
	for n < 1000 {
		o, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list gs://%s/%s: %w", bucket, q.Prefix, err)
		}
		n++
		if o.Name != "" && strings.HasSuffix(o.Name, ".overall_export_metadata") {
			return []poller.Check{{Name: CheckPrefix, OK: true, Warning: true,
				Detail: fmt.Sprintf("gs://%s/%s is an export's folder (it holds %s): new exports go into folders inside it; give the prefix above it", bucket, q.Prefix, o.Name)}}, nil
		}
	}
	if n == 0 {
		return []poller.Check{{Name: CheckPrefix, OK: true, Detail: fmt.Sprintf("gs://%s/%s is empty", bucket, q.Prefix)}}, nil
	}
	return []poller.Check{{Name: CheckPrefix, OK: true, Detail: fmt.Sprintf("gs://%s/%s holds earlier exports; each export gets a folder of its own under it", bucket, q.Prefix)}}, nil
}

// ownCheck asks Cloud Storage which of OwnPermissions the caller holds.
func ownCheck(ctx context.Context, cfg Config, bucket string) ([]poller.Check, error) {
	held, err := cfg.Storage.Bucket(bucket).IAM().TestPermissions(ctx, OwnPermissions)
	if err != nil {
		return nil, fmt.Errorf("test permissions on gs://%s: %w", bucket, err)
	}
	missing := minus(OwnPermissions, held)
	if len(missing) > 0 {
		return []poller.Check{{Name: CheckOwnAccess, Detail: fmt.Sprintf("dsexport lacks %s on gs://%s", strings.Join(missing, ", "), bucket), Fix: OwnFix(bucket)}}, nil
	}
	return []poller.Check{{Name: CheckOwnAccess, OK: true, Detail: "dsexport holds " + strings.Join(OwnPermissions, ", ")}}, nil
}

// agentCheck reads the bucket's IAM policy for the roles the project's
// service agent holds there. A role granted on the project does not show
// in a bucket's policy, so the detail says so.
func agentCheck(ctx context.Context, cfg Config, project, bucket string) ([]poller.Check, error) {
	number := projectNumber(cfg, project)
	if number == "" {
		return []poller.Check{numberUnknown(CheckServiceAgent, project)}, nil
	}
	c, err := agentAccess(ctx, cfg, CheckServiceAgent, bucket, number, AgentPermissions)
	if err != nil {
		return nil, err
	}
	if !c.OK {
		c.Fix = AgentFix(bucket, number)
	}
	return []poller.Check{c}, nil
}

// projectNumber is project's number as cfg.ProjectNumber gives it, "" when
// it is unknown.
func projectNumber(cfg Config, project string) string {
	if cfg.ProjectNumber == nil {
		return ""
	}
	return cfg.ProjectNumber(project)
}

// numberUnknown is the note of a service agent check that cannot run: the
// agent's address holds its project's number.
func numberUnknown(name, project string) poller.Check {
	return poller.Check{Name: name, OK: true, Warning: true,
		Detail: fmt.Sprintf("skipped: the number of project %s is unknown (set DSEXPORT_PROJECT_NUMBER)", project)}
}

// agentAccess is the check named name that the Firestore service agent of
// the project numbered number holds want on bucket, by the roles bound to
// it in the bucket's IAM policy (rolePermissions). A failed check has no
// fix: the caller knows which roles grant what it wants.
func agentAccess(ctx context.Context, cfg Config, name, bucket, number string, want []string) (poller.Check, error) {
	// Version 3: Cloud Storage refuses a version 1 read of a policy that
	// holds conditional bindings. A conditional binding counts as granted:
	// its condition is not evaluated here.
	policy, err := cfg.Storage.Bucket(bucket).IAM().V3().Policy(ctx)
	if err != nil {
		return poller.Check{}, fmt.Errorf("read the IAM policy of gs://%s (needs storage.buckets.getIamPolicy): %w", bucket, err)
	}
	member := "serviceAccount:" + ServiceAgent(number)
	var granted, roles []string
	for _, b := range policy.Bindings {
		if !slices.Contains(b.Members, member) || slices.Contains(roles, b.Role) {
			continue
		}
		roles = append(roles, b.Role)
		granted = append(granted, rolePermissions[b.Role]...)
	}
	if missing := minus(want, granted); len(missing) > 0 {
		return poller.Check{Name: name,
			Detail: fmt.Sprintf("%s lacks %s on gs://%s (its roles there: %s; a role granted on the project does not show here)",
				ServiceAgent(number), strings.Join(missing, ", "), bucket, orNone(roles))}, nil
	}
	return poller.Check{Name: name, OK: true, Detail: fmt.Sprintf("%s holds %s", ServiceAgent(number), strings.Join(roles, ", "))}, nil
}

func minus(want, held []string) []string {
	has := map[string]bool{}
	for _, h := range held {
		has[h] = true
	}
	var out []string
	for _, w := range want {
		if !has[w] {
			out = append(out, w)
		}
	}
	return out
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
