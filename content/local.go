package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dsexport/dsexport/poller"
)

// parsePath splits the absolute local path of an export's metadata file or
// of its folder into the folder and the metadata file, both cleaned: the
// local form of ParseURL, for the Datastore emulator's exports.
func parsePath(outputPath string) (folder, metadata string, err error) {
	bad := func(why string) error {
		return fmt.Errorf("content: output path %q: %s", poller.BoundText(outputPath, 256), why)
	}
	if len(outputPath) > poller.MaxURL {
		return "", "", bad(fmt.Sprintf("longer than %d bytes", poller.MaxURL))
	}
	if !filepath.IsAbs(outputPath) {
		// A relative path would be read from wherever the binary runs.
		return "", "", bad("not a gs:// URL nor an absolute path")
	}
	p := filepath.Clean(outputPath)
	if strings.HasSuffix(p, MetadataSuffix) {
		folder = filepath.Dir(p)
		if filepath.Dir(folder) == folder {
			return "", "", bad("the metadata file is not in an export's folder")
		}
		return folder, p, nil
	}
	if filepath.Dir(p) == p {
		return "", "", bad("want /…/FOLDER or /…/FOLDER/FOLDER" + MetadataSuffix)
	}
	return p, filepath.Join(p, filepath.Base(p)+MetadataSuffix), nil
}

// localSource is the local filesystem, where the Datastore emulator writes
// its exports (DIR/gs:/BUCKET/PREFIX/FOLDER/...). Symbolic links under the
// folder are not followed: a file that is not a regular one is an error,
// as a FIFO or a link out of the export is nothing an export writes.
type localSource struct{}

func (localSource) url(name string) string { return poller.BoundText(name, poller.MaxURL) }

func (s localSource) open(ctx context.Context, name string) (io.ReadCloser, error) {
	// Lstat first: opening a FIFO would block, and a link is not followed.
	info, err := os.Lstat(name)
	if err != nil {
		return nil, unpath(err)
	}
	if err := regular(info.Mode()); err != nil {
		return nil, err
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, unpath(err)
	}
	return ctxFile{ctx: ctx, f: f}, nil
}

func (s localSource) list(ctx context.Context, folder string, f func(name, rel string, size int64) error) error {
	// os.DirFS follows a link that is the folder itself (its parents may be
	// links too, as /tmp is on some systems) but reports the entries under
	// it as they are, links included, and WalkDir does not descend them.
	return fs.WalkDir(os.DirFS(folder), ".", func(rel string, d fs.DirEntry, err error) error {
		name := filepath.Join(folder, filepath.FromSlash(rel))
		if err != nil {
			return fmt.Errorf("content: list %s: %w", s.url(name), unpath(err))
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("content: list %s/: %w", s.url(folder), err)
		}
		if d.IsDir() {
			return nil
		}
		if err := regular(d.Type()); err != nil {
			return fmt.Errorf("content: list %s: %w", s.url(name), err)
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("content: list %s: %w", s.url(name), unpath(err))
		}
		return f(name, rel, info.Size())
	})
}

// regular says why a file of mode m is not read, or nil for a regular file.
func regular(m fs.FileMode) error {
	switch {
	case m.IsRegular():
		return nil
	case m&fs.ModeSymlink != 0:
		return errors.New("a symbolic link: not followed")
	default:
		return fmt.Errorf("not a regular file (%s)", m.Type())
	}
}

// unpath is the cause of a *fs.PathError without its path, which the
// errors already name (bounded), and its operation (open, lstat), which
// says little: "no such file or directory". errors.Is still finds
// fs.ErrNotExist in it.
func unpath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ctxFile is a file whose reads stop once ctx is done, as the storage
// client's do. It holds the file rather than embedding it, so that no
// promoted method (File.WriteTo) reads around the check.
type ctxFile struct {
	ctx context.Context
	f   *os.File
}

func (f ctxFile) Read(p []byte) (int, error) {
	if err := f.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := f.f.Read(p)
	return n, unpath(err)
}

func (f ctxFile) Close() error { return f.f.Close() }
