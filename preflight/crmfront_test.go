package preflight_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"google.golang.org/api/cloudresourcemanager/v3"
	"google.golang.org/api/option"
)

// crm is Cloud Resource Manager v3's projects.testIamPermissions over
// HTTP, in its wire format: POST /v3/projects/P:testIamPermissions with
// {"permissions": [...]}, answered with those of them the caller holds on
// P (shaped as testdata/crm-test-permissions.json; the field is omitted
// when none is held). As Google does, it refuses a project it does not know
// (403, the same as one the caller may not see) and a permission that is
// not one of a project's (400).
type crm struct {
	t   *testing.T
	srv *httptest.Server

	mu    sync.Mutex
	held  map[string][]string // project → permissions the caller holds
	asked map[string][]string // project → permissions last asked
	calls int
}

// projectPermissions are the Datastore permissions that Google tests on a
// project, as "Firestore in Datastore mode IAM" lists them: a name not
// here is refused, so a misspelt permission fails the test.
var projectPermissions = map[string]bool{}

func init() {
	for _, p := range []string{
		"databases.export", "databases.bulkDelete", "databases.get", "databases.import", "databases.getMetadata",
		"databases.list", "databases.create", "databases.update", "databases.delete", "databases.clone",
		"entities.allocateIds", "entities.create", "entities.delete", "entities.get", "entities.list", "entities.update",
		"operations.cancel", "operations.delete", "operations.get", "operations.list",
	} {
		projectPermissions["datastore."+p] = true
	}
}

func newCRM(t *testing.T) *crm {
	c := &crm{t: t, held: map[string][]string{}, asked: map[string][]string{}}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

// hold makes project known, the caller holding perms on it.
func (c *crm) hold(project string, perms ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held[project] = perms
}

func (c *crm) askedOf(project string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.asked[project]
}

func (c *crm) client(t *testing.T) *cloudresourcemanager.Service {
	s, err := cloudresourcemanager.NewService(context.Background(), option.WithEndpoint(c.srv.URL+"/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (c *crm) serve(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v3/projects/")
	project, ok2 := strings.CutSuffix(rest, ":testIamPermissions")
	if !ok || !ok2 || r.Method != http.MethodPost {
		googleError(w, http.StatusNotFound, "NOT_FOUND", "Method not found.")
		return
	}
	var req struct {
		Permissions []string `json:"permissions"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received.")
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	c.asked[project] = req.Permissions
	held, known := c.held[project]
	if !known {
		googleError(w, http.StatusForbidden, "PERMISSION_DENIED", "The caller does not have permission")
		return
	}
	for _, p := range req.Permissions {
		if !projectPermissions[p] {
			googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("Permission %s is not valid for this resource.", p))
			return
		}
	}
	var p map[string]any
	(&gcs{t: c.t}).sample("crm-test-permissions.json", &p)
	var answer []any
	for _, h := range held {
		for _, a := range req.Permissions {
			if a == h {
				answer = append(answer, h)
			}
		}
	}
	p["permissions"] = answer
	if len(answer) == 0 {
		delete(p, "permissions") // as Google omits an empty list
	}
	writeJSON(w, p)
}

func googleError(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}})
}
