package preflight

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/api/cloudresourcemanager/v3"

	"github.com/dsexport/dsexport/poller"
)

// The permissions a restore drill needs of dsexport's own identity (Source:
// "Firestore in Datastore mode IAM",
// https://cloud.google.com/datastore/docs/access/iam, and Firestore's
// "Security for server client libraries",
// https://firebase.google.com/docs/firestore/security/iam, whose note says
// that reading a database object (the Admin API's databases.get) takes
// datastore.databases.getMetadata, datastore.databases.get being a
// transaction's permission).
const (
	// permGetMetadata reads the source database's location, for a scratch
	// database dsexport creates where the spec names no location.
	permGetMetadata = "datastore.databases.getMetadata"
	permCreate      = "datastore.databases.create"
	permDelete      = "datastore.databases.delete"
	// permImport is both Admin APIs' import (Datastore Admin projects.import,
	// Firestore importDocuments).
	permImport = "datastore.databases.import"
	// permOperation follows the create and import operations.
	permOperation = "datastore.operations.get"
	// permList runs the COUNT aggregations, and the keys-only query that
	// empties an existing scratch database.
	permList = "datastore.entities.list"
	// permEntityDelete empties an existing scratch database.
	permEntityDelete = "datastore.entities.delete"
)

// DrillRole is the predefined role DrillFix grants on a project. No
// narrower predefined role holds both the database creation and deletion
// and the entity reads and deletes a drill makes: Cloud Datastore Import
// Export Admin (roles/datastore.importExportAdmin) holds the import and the
// operations but neither; Cloud Datastore User (roles/datastore.user) the
// entities but not the databases. Source: "Firestore roles and
// permissions", https://cloud.google.com/iam/docs/roles-permissions/firestore.
const DrillRole = "roles/datastore.owner"

// DrillDatastorePermissions are the permissions dsexport's own identity
// needs for t's drill, each list with the project it is tested on: the
// scratch project's (import, operations, COUNT, and either the creation
// and deletion of a database of its own or the emptying of the existing
// one), and with a created database in no named location, the source
// project's getMetadata. One project when both are the same.
func DrillDatastorePermissions(t poller.Target) (projects []string, perms [][]string) {
	d := t.Drill
	scratch := scratchProject(t)
	own := []string{permImport, permOperation, permList}
	if d.Database == "" {
		own = append(own, permCreate, permDelete)
	} else {
		own = append(own, permEntityDelete)
	}
	if d.Database == "" && d.Location == "" {
		if scratch == t.Project {
			own = append([]string{permGetMetadata}, own...)
		} else {
			projects, perms = append(projects, t.Project), append(perms, []string{permGetMetadata})
		}
	}
	return append(projects, scratch), append(perms, own)
}

// DrillFix is the command granting DrillRole on project to member
// (dsexport's service account; "" : the placeholder
// DSEXPORT_SERVICE_ACCOUNT, as OwnFix has it).
func DrillFix(project, member string) string {
	if member == "" {
		member = "DSEXPORT_SERVICE_ACCOUNT"
	}
	return fmt.Sprintf("gcloud projects add-iam-policy-binding %s --member=serviceAccount:%s --role=%s", project, member, DrillRole)
}

// DrillAgentPermissions are the permissions the scratch project's Firestore
// service agent, which runs the import, needs on the export bucket: read
// the export's files (get, list) and the bucket (Firestore reads it before
// an import, as before an export). The export's own agent is checked for
// AgentPermissions, which hold these.
var DrillAgentPermissions = []string{"storage.buckets.get", "storage.objects.get", "storage.objects.list"}

// DrillAgentFix is the command granting the service agent of project number
// read access to bucket: objectViewer for the objects, legacyBucketReader
// for storage.buckets.get.
func DrillAgentFix(bucket, number string) string {
	return AgentBinding(bucket, number, "roles/storage.objectViewer") + " && " + AgentBinding(bucket, number, "roles/storage.legacyBucketReader")
}

// DrillChecks are the checks of t's restore drill, none without one:
// dsexport's own permissions on the projects the drill uses (with
// cfg.ResourceManager), and the scratch project's service agent's read
// access to the export bucket (with cfg.Storage and an export).
func DrillChecks(cfg Config, t poller.Target) []poller.CheckFunc {
	if t.Drill == nil {
		return nil
	}
	var out []poller.CheckFunc
	if cfg.ResourceManager != nil {
		out = append(out, poller.CheckFunc{Name: CheckDrillOwn, Target: t.Name, Run: func(ctx context.Context) ([]poller.Check, error) {
			return drillOwnCheck(ctx, cfg, t)
		}})
	}
	if cfg.Storage != nil && t.Export != nil && t.Export.OutputURLPrefix != "" {
		bucket, _ := splitPrefix(t.Export.OutputURLPrefix)
		out = append(out, poller.CheckFunc{Name: CheckDrillAgent, Target: t.Name, Run: func(ctx context.Context) ([]poller.Check, error) {
			return drillAgentCheck(ctx, cfg, t, bucket)
		}})
	}
	return out
}

func scratchProject(t poller.Target) string {
	if t.Drill.Project != "" {
		return t.Drill.Project
	}
	return t.Project
}

// drillOwnCheck asks Cloud Resource Manager which of
// DrillDatastorePermissions the caller holds on each project. The answer
// holds only those held, of those asked (projects.testIamPermissions).
func drillOwnCheck(ctx context.Context, cfg Config, t poller.Target) ([]poller.Check, error) {
	who := "dsexport's service account"
	if cfg.OwnIdentity != "" {
		who = cfg.OwnIdentity
	}
	projects, perms := DrillDatastorePermissions(t)
	var lacks, holds, fixes []string
	for i, project := range projects {
		resp, err := cfg.ResourceManager.Projects.TestIamPermissions("projects/"+project,
			&cloudresourcemanager.TestIamPermissionsRequest{Permissions: perms[i]}).Context(ctx).Do()
		if err != nil {
			return nil, fmt.Errorf("test permissions on project %s: %w", project, err)
		}
		missing := minus(perms[i], resp.Permissions)
		if len(missing) > 0 {
			lacks = append(lacks, fmt.Sprintf("%s on project %s", strings.Join(missing, ", "), project))
			fixes = append(fixes, DrillFix(project, cfg.OwnIdentity))
		} else {
			holds = append(holds, fmt.Sprintf("%s on project %s", strings.Join(perms[i], ", "), project))
		}
	}
	if len(lacks) > 0 {
		return []poller.Check{{Name: CheckDrillOwn, Detail: fmt.Sprintf("%s lacks %s, which the restore drill needs", who, strings.Join(lacks, "; ")),
			Fix: strings.Join(fixes, " && ")}}, nil
	}
	return []poller.Check{{Name: CheckDrillOwn, OK: true, Detail: fmt.Sprintf("%s holds %s", who, strings.Join(holds, "; "))}}, nil
}

// drillAgentCheck checks that the scratch project's Firestore service agent
// reads the export bucket. Into the target's own project, that agent is
// the export's, which the service agent access check holds to more: one
// passing line says so rather than reading the policy twice.
func drillAgentCheck(ctx context.Context, cfg Config, t poller.Target, bucket string) ([]poller.Check, error) {
	scratch := scratchProject(t)
	if scratch == t.Project {
		return []poller.Check{{Name: CheckDrillAgent, OK: true,
			Detail: fmt.Sprintf("the drill imports into project %s, the target's own: its service agent is the export's, whose access to gs://%s the %s check covers", scratch, bucket, CheckServiceAgent)}}, nil
	}
	number := projectNumber(cfg, scratch)
	if number == "" {
		return []poller.Check{numberUnknown(CheckDrillAgent, scratch)}, nil
	}
	c, err := agentAccess(ctx, cfg, CheckDrillAgent, bucket, number, DrillAgentPermissions)
	if err != nil {
		return nil, err
	}
	if !c.OK {
		c.Fix = DrillAgentFix(bucket, number)
	}
	return []poller.Check{c}, nil
}
