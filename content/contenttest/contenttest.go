// Package contenttest serves export files from an in-process Cloud Storage
// (github.com/fsouza/fake-gcs-server) for the tests of the packages that
// read exports.
package contenttest

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// LoadDir returns the files under root as Cloud Storage objects: the first
// directory is the bucket, the rest the object's name.
func LoadDir(t testing.TB, root string) []fakestorage.Object {
	t.Helper()
	objs, err := Objects(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatalf("no files under %s", root)
	}
	return objs
}

// Objects is LoadDir for a program (internal/capacity/bigread): the files
// under root as objects of the bucket their first directory names.
func Objects(root string) ([]fakestorage.Object, error) {
	var objs []fakestorage.Object
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		bucket, name, _ := strings.Cut(filepath.ToSlash(rel), "/")
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		objs = append(objs, fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: name}, Content: b})
		return nil
	})
	return objs, err
}

// Serve starts a fake-gcs-server on a loopback port holding objs, stopped
// when t ends, and points STORAGE_EMULATOR_HOST at it, as the storage
// client reads it.
func Serve(t testing.TB, objs []fakestorage.Object) *fakestorage.Server {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		// PublicHost: the client reads objects from the host it is told;
		// without it every read answers "object doesn't exist".
		InitialObjects: objs, Scheme: "http", Host: "127.0.0.1", PublicHost: "127.0.0.1", Writer: discard{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(srv.URL(), "http://"))
	return srv
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
