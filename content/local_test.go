package content_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsexport/dsexport/content"
	"google.golang.org/api/option"
)

// newLocal returns a Reader made by content.NewLocal, without credentials:
// the local reads need none.
func newLocal(t *testing.T) *content.Reader {
	t.Helper()
	r, err := content.NewLocal(context.Background(), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// localExport returns the absolute path of the committed exports' bucket
// directory, testdata/export/testdata, or of a copy of it in a temporary
// directory, for the tests that break it.
func localExport(t *testing.T, copied bool) string {
	t.Helper()
	dir, err := filepath.Abs("testdata/export/testdata")
	if err != nil {
		t.Fatal(err)
	}
	if copied {
		tmp := filepath.Join(t.TempDir(), "gs:", "testdata")
		if err := os.CopyFS(tmp, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		dir = tmp
	}
	return dir
}

// The local paths of the committed exports' metadata files and folders,
// under dir (localExport).
func localFullMeta(dir string) string {
	return filepath.Join(dir, fullFolder, "2026-12-02T073300_726.overall_export_metadata")
}
func localFullOutput(dir string) string {
	return filepath.Join(dir, fullFolder, "all_namespaces", "all_kinds", "output-0")
}
func localOrderMeta(dir string) string {
	return filepath.Join(dir, orderFolder, "2026-12-02T073301_754.overall_export_metadata")
}

// TestReadLocalCommittedExport reads the committed exports from the
// filesystem and finds what TestReadCommittedExport finds in Cloud
// Storage; the same Reader still reads gs:// URLs through the client.
func TestReadLocalCommittedExport(t *testing.T) {
	dir := localExport(t, false)
	t.Run("local", func(t *testing.T) {
		testCommitted(t, newLocal(t), committedCases(t,
			localFullMeta(dir), filepath.Join(dir, fullFolder)+"/", localOrderMeta(dir)))
	})
	t.Run("gs", func(t *testing.T) {
		serve(t, loadDir(t, "testdata/export")) // STORAGE_EMULATOR_HOST for NewLocal's client
		r, err := content.NewLocal(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		testCommitted(t, r, committedCases(t, fullMetadata, "gs://testdata/"+fullFolder+"/", orderMeta))
	})
}

func TestReadLocalBrokenExport(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(t *testing.T, dir string)
		url   func(dir string) string
		want  func(dir string) []string // all in the error
	}{
		{"no metadata file",
			func(t *testing.T, dir string) { remove(t, localFullMeta(dir)) }, localFullMeta,
			func(dir string) []string {
				return []string{"export metadata " + localFullMeta(dir) + ": no such file or directory"}
			}},
		{"no metadata file, folder path",
			func(t *testing.T, dir string) { remove(t, localFullMeta(dir)) },
			func(dir string) string { return filepath.Join(dir, fullFolder) },
			func(dir string) []string { return []string{"export metadata " + localFullMeta(dir), "no such file"} }},
		{"empty metadata file",
			func(t *testing.T, dir string) { write(t, localFullMeta(dir), nil) }, localFullMeta,
			func(dir string) []string { return []string{"export metadata " + localFullMeta(dir) + ": empty"} }},
		{"a flipped byte in an output file",
			func(t *testing.T, dir string) {
				b := readFile(t, localFullOutput(dir))
				b[len(b)/2] ^= 0x20
				write(t, localFullOutput(dir), b)
			}, localFullMeta,
			func(dir string) []string {
				return []string{"output file " + localFullOutput(dir) + ": record ", "checksum mismatch"}
			}},
		{"a truncated output file",
			func(t *testing.T, dir string) {
				b := readFile(t, localFullOutput(dir))
				write(t, localFullOutput(dir), b[:len(b)-10])
			}, localFullMeta,
			func(dir string) []string {
				return []string{"output file " + localFullOutput(dir) + ": record 5 (in the block at byte 0)", "corrupted"}
			}},
		{"an output file that is a symbolic link",
			func(t *testing.T, dir string) {
				remove(t, localFullOutput(dir))
				symlink(t, localFullMeta(dir), localFullOutput(dir))
			}, localFullMeta,
			func(dir string) []string {
				return []string{"list " + localFullOutput(dir) + ": a symbolic link: not followed"}
			}},
		{"a directory that is a symbolic link",
			func(t *testing.T, dir string) {
				symlink(t, filepath.Join(dir, orderFolder, "all_namespaces"), filepath.Join(dir, fullFolder, "linked"))
			}, localFullMeta,
			func(dir string) []string {
				return []string{"list " + filepath.Join(dir, fullFolder, "linked") + ": a symbolic link: not followed"}
			}},
		{"a metadata file that is a symbolic link",
			func(t *testing.T, dir string) {
				remove(t, localFullMeta(dir))
				symlink(t, localOrderMeta(dir), localFullMeta(dir))
			}, localFullMeta,
			func(dir string) []string {
				return []string{"export metadata " + localFullMeta(dir) + ": a symbolic link: not followed"}
			}},
		{"a relative path", nil,
			func(string) string { return "testdata/export/testdata/" + fullFolder },
			func(string) []string { return []string{"not a gs:// URL nor an absolute path"} }},
		{"a metadata file in /", nil,
			func(string) string { return "/x" + content.MetadataSuffix },
			func(string) []string { return []string{"not in an export's folder"} }},
		{"the root", nil,
			func(string) string { return "//" },
			func(string) []string { return []string{"want /…/FOLDER"} }},
	}
	r := newLocal(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := localExport(t, true)
			if tt.spoil != nil {
				tt.spoil(t, dir)
			}
			_, err := r.Read(context.Background(), tt.url(dir))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want(dir) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestReadLocalMissingIsNotExist: a caller can tell an export not there
// from one that is broken.
func TestReadLocalMissingIsNotExist(t *testing.T) {
	_, err := newLocal(t).Read(context.Background(), filepath.Join(t.TempDir(), "F"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read of a missing folder: %v, want an fs.ErrNotExist", err)
	}
}

// TestReadRefusesLocalPath: a Reader made by New, as production makes it,
// does not read local files, even an export that is there.
func TestReadRefusesLocalPath(t *testing.T) {
	r := serve(t, loadDir(t, "testdata/export"))
	dir := localExport(t, false)
	for _, p := range []string{localFullMeta(dir), filepath.Join(dir, fullFolder)} {
		_, err := r.Read(context.Background(), p)
		if err == nil || !strings.Contains(err.Error(), "not a gs:// URL") {
			t.Errorf("Read(%s): %v, want not a gs:// URL", p, err)
		}
	}
}

func remove(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
