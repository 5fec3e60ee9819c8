package content_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/dsexport/dsexport/content"
	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/poller"
	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// EmulatorDirEnv names the Datastore emulator's working directory, where it
// writes its exports, when the emulator is the one DATASTORE_EMULATOR_HOST
// names (scripts/emulator.sh exports both). For an emulator the test binary
// starts, emulatortest.Dir is that directory.
const EmulatorDirEnv = "DATASTORE_EMULATOR_DIR"

func emulatorDir(t *testing.T) string {
	t.Helper()
	host := emulatortest.Host(t) // skips, or fails in CI, without an emulator
	if d := emulatortest.Dir(); d != "" {
		return d
	}
	if d := os.Getenv(EmulatorDirEnv); d != "" {
		return d
	}
	msg := fmt.Sprintf("the Datastore emulator on %s writes its exports in its directory: set %s to it", host, EmulatorDirEnv)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("skipping: " + msg)
	return ""
}

func post(t *testing.T, url string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s: %s", url, resp.Status, out)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("POST %s: %v: %s", url, err, out)
	}
	return m
}

// TestReadEmulatorExport writes entities through the emulator's REST
// :commit, exports them with the emulator's own export, loads the files it
// wrote into fake-gcs-server at the same object names and reads them back,
// then reads the same files in local mode where the emulator wrote them.
func TestReadEmulatorExport(t *testing.T) {
	dir := emulatorDir(t)
	host := emulatortest.Host(t)
	project := emulatortest.Project(t)
	base := "http://" + host + "/v1/projects/" + project

	key := func(database, namespace string, path ...map[string]any) map[string]any {
		p := map[string]any{"projectId": project}
		if namespace != "" {
			p["namespaceId"] = namespace
		}
		if database != "" {
			p["databaseId"] = database
		}
		return map[string]any{"partitionId": p, "path": path}
	}
	el := func(kind, name string) map[string]any { return map[string]any{"kind": kind, "name": name} }
	var muts []map[string]any
	for i := range 3 {
		muts = append(muts, map[string]any{"upsert": map[string]any{
			"key": key("", "", el("Order", fmt.Sprint("o", i))), "properties": map[string]any{"total": map[string]any{"integerValue": fmt.Sprint(i)}}}})
	}
	for i := range 2 {
		muts = append(muts, map[string]any{"upsert": map[string]any{"key": key("", "", el("Order", "o0"), el("Line", fmt.Sprint("l", i)))}})
	}
	muts = append(muts, map[string]any{"upsert": map[string]any{"key": key("", "tenant", el("Order", "t1"))}})
	post(t, base+":commit", map[string]any{"mode": "NON_TRANSACTIONAL", "mutations": muts})
	post(t, base+":commit", map[string]any{"mode": "NON_TRANSACTIONAL", "databaseId": "other",
		"mutations": []map[string]any{{"upsert": map[string]any{"key": key("other", "", el("Ghost", "g"))}}}})

	tests := []struct {
		name   string
		filter map[string]any
		want   []poller.KindCount
		other  int64
	}{
		{"all kinds", nil, []poller.KindCount{kc("", "Line", 2), kc("", "Order", 3), kc("tenant", "Order", 1)}, 1},
		{"kinds filter", map[string]any{"kinds": []string{"Line"}}, []poller.KindCount{kc("", "Line", 2)}, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := fmt.Sprintf("%s/run%d", project, i)
			req := map[string]any{"outputUrlPrefix": "gs://emu/" + prefix}
			if tt.filter != nil {
				req["entityFilter"] = tt.filter
			}
			op := post(t, base+":export", req)
			if op["done"] != true {
				t.Fatalf("export not done: %v", op)
			}
			// The emulator writes DIR/gs:/BUCKET/PREFIX/FOLDER/...
			root := filepath.Join(dir, "gs:", "emu", prefix)
			folders, err := os.ReadDir(root)
			if err != nil || len(folders) != 1 {
				t.Fatalf("export folders under %s: %v %v, want one", root, folders, err)
			}
			folder := folders[0].Name()
			// Only this export's files: the directory holds other tests' too.
			r := serve(t, loadUnder(t, root, "emu", prefix))
			url := "gs://emu/" + prefix + "/" + folder + "/" + folder + ".overall_export_metadata"
			got, err := r.Read(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Kinds, tt.want) || got.OtherDatabases != tt.other || got.Files < 1 || got.Objects <= got.Files {
				t.Errorf("Read(%s): kinds %+v other %d files %d objects %d; want %+v, %d other, files and a metadata object",
					url, got.Kinds, got.OtherDatabases, got.Files, got.Objects, tt.want, tt.other)
			}
			var sum int64
			for _, k := range tt.want {
				sum += k.Entities
			}
			if got.Entities != sum {
				t.Errorf("entities %d, want %d", got.Entities, sum)
			}

			// In local mode, the same files straight from the emulator's
			// directory, where the operation's outputUrl says they are: the
			// emulator's outputUrl is the local path of the prefix
			// (DIR/gs:/emu/PREFIX), not of the metadata file as Google's is.
			resp, _ := op["response"].(map[string]any)
			outputURL, _ := resp["outputUrl"].(string)
			if outputURL != root {
				t.Errorf("the operation's outputUrl is %q, want the export's local prefix %s", outputURL, root)
			}
			local := newLocal(t)
			want := got
			for _, p := range []string{
				filepath.Join(outputURL, folder, folder+content.MetadataSuffix),
				filepath.Join(outputURL, folder),
			} {
				lgot, err := local.Read(context.Background(), p)
				if err != nil {
					t.Fatal(err)
				}
				want.MetadataURL = filepath.Join(outputURL, folder, folder+content.MetadataSuffix)
				if !reflect.DeepEqual(lgot, want) {
					t.Errorf("local Read(%s)\n got %+v\nwant %+v (as read from Cloud Storage)", p, lgot, want)
				}
			}
		})
	}
}

// loadUnder returns the files under root as objects of bucket named
// prefix/PATH, PATH their path under root.
func loadUnder(t *testing.T, root, bucket, prefix string) []fakestorage.Object {
	t.Helper()
	var objs []fakestorage.Object
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		objs = append(objs, fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: prefix + "/" + filepath.ToSlash(rel)}, Content: b})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return objs
}
