package admin_test

import (
	"context"
	"errors"
	"testing"

	"github.com/dsexport/dsexport/admin"
	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/admin/firestorefake"
	"github.com/dsexport/dsexport/poller"
)

// routerRig is a Router over both fakes.
func routerRig(t *testing.T) (admin.Router, *adminfake.Server, *firestorefake.Server) {
	t.Helper()
	ds, fs := adminfake.New(t), firestorefake.New(t)
	fs.AddDatabase("example-proj", "analytics")
	fs.AddDatabase("example-proj", "(default)")
	return admin.Router{Datastore: newAdmin(t, ds.URL()), Firestore: newFirestore(t, fs.URL())}, ds, fs
}

func TestRouterExport(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name      string
		req       poller.ExportRequest
		firestore bool
	}{
		{"default", poller.ExportRequest{}, false},
		{"(default) spelled out", poller.ExportRequest{Database: "(default)"}, false},
		{"named", poller.ExportRequest{Database: "analytics"}, true},
		{"(default) through Firestore", poller.ExportRequest{Firestore: true}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, ds, fs := routerRig(t)
			req := tt.req
			req.Project, req.OutputURLPrefix, req.Trigger = "example-proj", "gs://b", poller.TriggerCron
			op, err := r.Export(ctx, req)
			if err != nil {
				t.Fatalf("Export: %v", err)
			}
			dsCalls, fsCalls := len(ds.Exports()), len(fs.Exports())
			if tt.firestore {
				if dsCalls != 0 || fsCalls != 1 || !poller.IsFirestoreName(op.Name) {
					t.Errorf("export went to Datastore %d times, Firestore %d times, named %q; want Firestore once", dsCalls, fsCalls, op.Name)
				}
			} else if dsCalls != 1 || fsCalls != 0 || poller.IsFirestoreName(op.Name) {
				t.Errorf("export went to Datastore %d times, Firestore %d times, named %q; want Datastore once", dsCalls, fsCalls, op.Name)
			}

			// The read goes where the name says.
			if _, err := r.Get(ctx, op.Name); err != nil {
				t.Fatalf("Get(%s): %v", op.Name, err)
			}
			if tt.firestore {
				if got := fs.Gets(op.Name); got != 1 || len(ds.Names()) != 0 {
					t.Errorf("Firestore reads of %s = %d (Datastore knows %d operations); want 1 and 0", op.Name, got, len(ds.Names()))
				}
			} else if got := ds.Gets(op.Name); got != 1 || fs.Calls(firestorefake.GetOperation) != 0 {
				t.Errorf("Datastore reads of %s = %d, Firestore reads %d; want 1 and 0", op.Name, got, fs.Calls(firestorefake.GetOperation))
			}
		})
	}
}

func TestRouterMissingSide(t *testing.T) {
	ctx := context.Background()
	ds, fs := adminfake.New(t), firestorefake.New(t)
	onlyDatastore := admin.Router{Datastore: newAdmin(t, ds.URL())}
	onlyFirestore := admin.Router{Firestore: newFirestore(t, fs.URL())}
	req := poller.ExportRequest{Project: "example-proj", OutputURLPrefix: "gs://b", Trigger: poller.TriggerCron}

	named := req
	named.Database = "analytics"
	var re *poller.RefusedError
	if _, err := onlyDatastore.Export(ctx, named); !errors.As(err, &re) || re.Code != 9 {
		t.Errorf("Export of a named database without Firestore = %v; want a *RefusedError FAILED_PRECONDITION (9)", err)
	}
	if _, err := onlyFirestore.Export(ctx, req); !errors.As(err, &re) || re.Code != 9 {
		t.Errorf("Export of (default) without Datastore = %v; want a *RefusedError FAILED_PRECONDITION (9)", err)
	}
	if _, err := onlyDatastore.Get(ctx, "projects/example-proj/databases/analytics/operations/x"); err == nil || errors.Is(err, poller.ErrOperationGone) {
		t.Errorf("Get of a Firestore name without Firestore = %v; want an error, not ErrOperationGone", err)
	}
	if _, err := onlyFirestore.Get(ctx, "projects/example-proj/operations/x"); err == nil || errors.Is(err, poller.ErrOperationGone) {
		t.Errorf("Get of a Datastore name without Datastore = %v; want an error, not ErrOperationGone", err)
	}
	both := admin.Router{Datastore: onlyDatastore.Datastore, Firestore: onlyFirestore.Firestore}
	for _, name := range trickyNames {
		if _, err := poller.ParseName(name); err == nil {
			continue
		}
		if _, err := both.Get(ctx, name); err == nil {
			t.Errorf("Router.Get(%q) accepted it", name)
		}
	}
	if len(ds.Exports()) != 0 || len(ds.Names()) != 0 || len(fs.Requests()) != 0 {
		t.Errorf("a call for a missing side or a bad name reached an API: %d Datastore exports, %d Firestore requests", len(ds.Exports()), len(fs.Requests()))
	}
}
