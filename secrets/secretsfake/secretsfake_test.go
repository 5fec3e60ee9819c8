package secretsfake_test

import (
	"context"
	"strings"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/dsexport/dsexport/secrets/secretsfake"
)

func TestUnsupportedCallSaysSo(t *testing.T) {
	fake := secretsfake.New(t)
	conn, err := grpc.NewClient(fake.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	client := secretmanagerpb.NewSecretManagerServiceClient(conn)
	_, err = client.GetSecret(context.Background(), &secretmanagerpb.GetSecretRequest{Name: "projects/p/secrets/s"})
	if got, want := status.Code(err), codes.Unimplemented; got != want {
		t.Fatalf("GetSecret code = %v; want %v", got, want)
	}
	if !strings.Contains(err.Error(), "not supported by the fake") {
		t.Fatalf("GetSecret error %q does not say the fake lacks the call", err)
	}
	if got, want := fake.Calls(), 1; got != want {
		t.Fatalf("Calls() = %d; want %d", got, want)
	}
}

func TestAccessReturnsResolvedNameAndChecksum(t *testing.T) {
	fake := secretsfake.New(t)
	fake.Put("projects/p/secrets/s/versions/1", "one")
	fake.Put("projects/p/secrets/s/versions/2", "two")
	conn, err := grpc.NewClient(fake.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	client := secretmanagerpb.NewSecretManagerServiceClient(conn)
	resp, err := client.AccessSecretVersion(context.Background(), &secretmanagerpb.AccessSecretVersionRequest{Name: "projects/p/secrets/s/versions/latest"})
	if err != nil {
		t.Fatalf("AccessSecretVersion: %v", err)
	}
	if got, want := resp.GetName(), "projects/p/secrets/s/versions/2"; got != want {
		t.Fatalf("name = %q; want %q", got, want)
	}
	if got, want := string(resp.GetPayload().GetData()), "two"; got != want {
		t.Fatalf("data = %q; want %q", got, want)
	}
	// 0x52d8b3a3 is CRC32C("two"), written out so the test does not merely
	// repeat the fake's computation.
	if resp.GetPayload().DataCrc32C == nil {
		t.Fatalf("payload has no checksum; Secret Manager always sends one")
	}
	if got, want := resp.GetPayload().GetDataCrc32C(), int64(0x52d8b3a3); got != want {
		t.Fatalf("checksum = %#x; want %#x", got, want)
	}
}
