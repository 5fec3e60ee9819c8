package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/dsexport/dsexport/content"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
)

// errNotVerified is verify's error when the files do not hold what they
// should: exit status 1.
var errNotVerified = errors.New("the export's files do not hold what they should")

// verify reads the files of a successful export (content.Reader, through
// STORAGE_EMULATOR_HOST locally) and prints what they hold, per kind, and
// what does not match: no metadata file, no entity, a count that differs
// from the operation's own.
func verify(ctx context.Context, s settings, nameOrID, target string, stdout, stderr io.Writer) error {
	c, d, err := open(ctx, s, stderr)
	if err != nil {
		return err
	}
	defer d.close()
	name, err := c.operationName(nameOrID, target)
	if err != nil {
		return err
	}
	rec, err := d.store.Get(ctx, name)
	if err != nil {
		return err
	}
	if rec.Outcome != poller.OutcomeSuccess || rec.OutputURL == "" {
		return fmt.Errorf("%s did not succeed (outcome %s): there are no export files to verify", name, present.OrNone(string(rec.Outcome)))
	}
	r, err := content.New(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	db := rec.DatabaseOf()
	if poller.IsDefaultDatabase(db) {
		db = ""
	}
	got, err := r.ReadDatabase(ctx, rec.OutputURL, db)
	if err != nil {
		return fmt.Errorf("verify %s: %w", name, err)
	}
	findings := poller.CheckContent(got, rec.Operation, nil, nil)
	return writeContent(stdout, got, findings)
}

// writeContent prints the verification's summary line, the kinds and the
// findings; errNotVerified when there are findings.
func writeContent(w io.Writer, got poller.Content, findings []poller.ContentFinding) error {
	kinds := map[string]bool{}
	for _, k := range got.Kinds {
		if k.Kind != poller.CutKind {
			kinds[k.Kind] = true
		}
	}
	fmt.Fprintf(w, "%s: %s entities in %s, %s in %s (%s)\n", verdict(findings), present.Count(got.Entities),
		plural(len(kinds), "kind"), present.Bytes(got.Bytes), plural(got.Files, "file"), got.MetadataURL)
	if got.OtherDatabases > 0 {
		fmt.Fprintf(w, "(the files also hold %s entities of other databases, not counted)\n", present.Count(got.OtherDatabases))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tKIND\tENTITIES")
	for _, k := range got.Kinds {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", present.OrNone(k.Namespace), k.Kind, present.Count(k.Entities))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range findings {
		fmt.Fprintf(w, "! %s\n", f.Text)
	}
	if len(findings) > 0 {
		return errNotVerified
	}
	return nil
}

func verdict(findings []poller.ContentFinding) string {
	if len(findings) > 0 {
		return "NOT verified"
	}
	return "verified"
}

// plural is "1 kind", "2 kinds".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
