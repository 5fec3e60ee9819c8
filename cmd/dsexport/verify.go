package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
)

// errNotVerified is verify's error when the files do not hold what they
// should: exit status 1.
var errNotVerified = errors.New("the export's files do not hold what they should")

// verify reads the files of a successful export (content.Reader, through
// STORAGE_EMULATOR_HOST locally, or the Datastore emulator's own files)
// and prints what they hold, per kind, against the source database's
// counts, and what does not match: no metadata file, no entity, a count
// that differs from the operation's own or the source's, a kind of the
// target's previous verified export gone. It is the check each success
// gets before its report, run by hand; it records nothing.
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
	c.polling.verify = true
	if err := d.checkers(ctx, c); err != nil {
		return err
	}
	p := poller.New(poller.Config{Store: d.store, Logger: d.log, Content: d.content, SourceCounter: d.counter,
		ContentTimeout: c.polling.verifyTimeout})
	v, err := p.CheckExport(ctx, rec)
	if err != nil {
		return fmt.Errorf("verify %s: %w", name, err)
	}
	return writeVerification(stdout, v)
}

// writeVerification prints the verification's summary line, the kinds with
// the source's counts, and the findings, alarms marked "!" and warnings
// "~"; errNotVerified when an alarm was raised or the files were not read.
// A warning (a count of the operation's or the source's that differs) is
// no failure: a live database changes while it is exported.
func writeVerification(w io.Writer, v poller.Verification) error {
	got := v.Content
	fmt.Fprintf(w, "%s (%s)\n", present.VerifiedText(v), present.OrNone(got.MetadataURL))
	if got.OtherDatabases > 0 {
		fmt.Fprintf(w, "(the files also hold %s entities of other databases, not counted)\n", present.Count(got.OtherDatabases))
	}
	if v.Error == "" {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAMESPACE\tKIND\tENTITIES\tIN THE DATABASE")
		for _, k := range got.Kinds {
			source := present.None
			if n, ok := v.Source[k.Namespace+"/"+k.Kind]; ok {
				source = present.Count(n)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", present.OrNone(k.Namespace), k.Kind, present.Count(k.Entities), source)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if v.SourceError != "" {
		fmt.Fprintf(w, "(the source database was not counted: %s)\n", present.Detail(v.SourceError))
	}
	for _, f := range v.Findings {
		mark := "~"
		if f.Rule.Alarm() {
			mark = "!"
		}
		fmt.Fprintf(w, "%s %s\n", mark, f.Text)
	}
	if v.Alarm() || v.Error != "" {
		return errNotVerified
	}
	return nil
}
