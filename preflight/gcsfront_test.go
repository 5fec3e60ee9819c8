package preflight_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"
)

// gcs is fake-gcs-server (in process, no listener of its own) behind a
// small front that serves what it lacks, in the JSON API's wire format:
// the bucket IAM calls (GET /storage/v1/b/B/iam and
// /iam/testPermissions, shaped as testdata/iam-policy.json and
// testdata/test-permissions.json), and a bucket's location and Requester
// Pays, which fake-gcs-server answers the same for every bucket
// (Options.BucketsLocation) and not at all: the front patches its bucket
// answer's "location" and "billing" fields.
type gcs struct {
	t    *testing.T
	fake *fakestorage.Server
	srv  *httptest.Server

	mu        sync.Mutex
	location  map[string]string
	payer     map[string]bool
	bindings  map[string]map[string][]string // bucket → role → members
	held      map[string][]string            // bucket → permissions the caller holds
	iamCalls  int
	attrCalls int
}

func newGCS(t *testing.T) *gcs {
	fake, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true, BucketsLocation: "US-CENTRAL1"})
	if err != nil {
		t.Fatal(err)
	}
	g := &gcs{t: t, fake: fake, location: map[string]string{}, payer: map[string]bool{},
		bindings: map[string]map[string][]string{}, held: map[string][]string{}}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	t.Cleanup(fake.Stop)
	return g
}

// bucket creates a bucket in location, where dsexport holds every
// permission it tests and no one else is bound.
func (g *gcs) bucket(name, location string) {
	g.fake.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: name})
	g.mu.Lock()
	defer g.mu.Unlock()
	g.location[name] = location
	g.held[name] = []string{"storage.buckets.get", "storage.objects.list", "storage.objects.get"}
	g.bindings[name] = map[string][]string{}
}

func (g *gcs) bind(bucket, role, member string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.bindings[bucket][role] = append(g.bindings[bucket][role], member)
}

func (g *gcs) client(t *testing.T) *storage.Client {
	c, err := storage.NewClient(context.Background(), option.WithEndpoint(g.srv.URL+"/storage/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (g *gcs) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	rest, ok := strings.CutPrefix(path, "/storage/v1/b/")
	if !ok || r.Method != http.MethodGet {
		g.fake.HTTPHandler().ServeHTTP(w, r)
		return
	}
	bucket, sub, _ := strings.Cut(rest, "/")
	g.mu.Lock()
	defer g.mu.Unlock()
	_, exists := g.bindings[bucket]
	switch sub {
	case "iam":
		g.iamCalls++
		if !exists {
			http.Error(w, `{"error":{"code":404,"message":"The specified bucket does not exist."}}`, http.StatusNotFound)
			return
		}
		var p map[string]any
		g.sample("iam-policy.json", &p)
		p["resourceId"] = "projects/_/buckets/" + bucket
		bindings := p["bindings"].([]any)
		for role, members := range g.bindings[bucket] {
			merged := false
			for _, b := range bindings { // one binding per role, as Google answers
				if b := b.(map[string]any); b["role"] == role {
					b["members"] = append(b["members"].([]any), toAny(members)...)
					merged = true
				}
			}
			if !merged {
				bindings = append(bindings, map[string]any{"role": role, "members": members})
			}
		}
		p["bindings"] = bindings
		writeJSON(w, p)
	case "iam/testPermissions":
		g.iamCalls++
		var p map[string]any
		g.sample("test-permissions.json", &p)
		asked := map[string]bool{}
		for _, a := range r.URL.Query()["permissions"] {
			asked[a] = true
		}
		var held []any
		for _, h := range g.held[bucket] {
			if asked[h] {
				held = append(held, h)
			}
		}
		p["permissions"] = held
		if len(held) == 0 {
			delete(p, "permissions") // as Google omits an empty list
		}
		writeJSON(w, p)
	case "":
		g.attrCalls++
		rec := httptest.NewRecorder()
		g.fake.HTTPHandler().ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		var b map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
			g.t.Errorf("fake-gcs-server bucket answer: %v", err)
		}
		b["location"] = g.location[bucket]
		b["locationType"] = "region"
		if len(g.location[bucket]) <= 5 {
			b["locationType"] = "multi-region"
		}
		if g.payer[bucket] {
			b["billing"] = map[string]any{"requesterPays": true}
		}
		writeJSON(w, b)
	default:
		g.fake.HTTPHandler().ServeHTTP(w, r)
	}
}

func (g *gcs) sample(name string, v any) {
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		g.t.Fatal(err)
	}
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(v); err != nil {
		g.t.Fatal(err)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(v)
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
