package store_test

import (
	"context"
	"os"
	"testing"

	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/store"
	"github.com/dsexport/dsexport/store/storetest"
)

// The store must keep satisfying the poller's port.
var _ poller.Store = (*store.Store)(nil)

func TestMain(m *testing.M) {
	os.Exit(emulatortest.Main(m))
}

// TestContract runs the contract against the Datastore emulator, each
// subtest in a project of its own so that no other subtest's entities show
// in List or Pending.
func TestContract(t *testing.T) {
	host := emulatortest.Host(t)
	storetest.Run(t, func(t *testing.T) storetest.Store {
		// Options rather than DATASTORE_EMULATOR_HOST, which t.Setenv would
		// have to set in every subtest.
		s, err := store.New(context.Background(), emulatortest.Project(t), option.WithEndpoint(host),
			option.WithoutAuthentication(), option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
