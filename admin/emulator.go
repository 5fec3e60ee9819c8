package admin

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// The Datastore emulator's :export answers a done operation whose
// response.outputUrl is the local directory it wrote under (the output
// prefix, as a path below its working directory: /tmp/dir/gs:/bucket/x),
// not the .overall_export_metadata object Google names, and the folder it
// made there is named after the time of the export
// (2026-12-02T09:52:13_345/2026-12-02T09:52:13_345.overall_export_metadata).
// Its :import takes that file's path. So that an export made against the
// emulator can be imported and reported as one made against Google,
// Datastore resolves such a directory to the export's file
// (resolveEmulatorOutput); never a gs:// URL, never against Google.

// metadataSuffix ends the name of an export's overall metadata file.
const metadataSuffix = ".overall_export_metadata"

// maxEmulatorFolders bounds the entries of an emulator's output directory
// that are read: a directory of a test holds a few exports.
const maxEmulatorFolders = 10000

// emulatorSlack widens an export's [startTime, endTime] when its folder's
// time is matched: the folder's name has whole seconds, and the emulator
// takes its time at a moment of its own.
const emulatorSlack = time.Second

// resolveEmulatorOutput is op with a local output directory replaced by
// the export's .overall_export_metadata file, when EmulatorExportFile finds
// exactly one; otherwise op as it is, the directory kept (which the caller
// sees: it is no .overall_export_metadata).
func resolveEmulatorOutput(op poller.Operation) poller.Operation {
	if !op.Done || op.OutputURL == "" || strings.HasPrefix(op.OutputURL, "gs://") || strings.HasSuffix(op.OutputURL, metadataSuffix) {
		return op
	}
	if file, err := EmulatorExportFile(op.OutputURL, op.StartTime, op.EndTime); err == nil {
		op.OutputURL = file
	}
	return op
}

// EmulatorExportFile finds, in dir (the local directory the Datastore
// emulator answers as an export's outputUrl), the .overall_export_metadata
// file of the export that ran from start to end: the one folder under dir
// whose name's time lies within [start-1s, end+1s] and that holds
// FOLDER.overall_export_metadata. It is an error, which says why, when dir
// is not an absolute local directory, when no folder fits or when several
// do (exports of the same prefix within the same seconds): the export is
// then not guessed at.
func EmulatorExportFile(dir string, start, end time.Time) (string, error) {
	if strings.Contains(dir, "://") || !filepath.IsAbs(dir) {
		return "", fmt.Errorf("emulator output %s is not an absolute local directory", quoteBounded(dir))
	}
	if start.IsZero() || end.IsZero() || end.Before(start) {
		return "", fmt.Errorf("emulator output %s: the operation has no start and end to match its folder with", quoteBounded(dir))
	}
	f, err := os.Open(dir)
	if err != nil {
		return "", fmt.Errorf("emulator output: %w", err)
	}
	defer f.Close()
	entries, err := f.ReadDir(maxEmulatorFolders)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("emulator output: %w", err)
	}
	lo, hi := start.Add(-emulatorSlack), end.Add(emulatorSlack)
	var found []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		t, ok := folderTime(e.Name())
		if !ok || t.Before(lo.Truncate(time.Second)) || t.After(hi) {
			continue
		}
		file := filepath.Join(dir, e.Name(), e.Name()+metadataSuffix)
		if fi, err := os.Stat(file); err == nil && fi.Mode().IsRegular() {
			found = append(found, file)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("emulator output %s holds no export folder of %s to %s", quoteBounded(dir),
			start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano))
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("emulator output %s holds %d export folders of %s to %s: ambiguous", quoteBounded(dir), len(found),
		start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano))
}

// folderTime is the time an export folder's name starts with
// (2026-12-02T09:52:13_345: 09:52:13 UTC), to the second.
func folderTime(name string) (time.Time, bool) {
	stamp, _, ok := strings.Cut(name, "_")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse("2006-01-02T15:04:05", stamp)
	return t, err == nil
}
