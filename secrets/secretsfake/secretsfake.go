// Package secretsfake is an in-memory Secret Manager for tests: a
// SecretManagerServiceServer on a real gRPC server that answers
// AccessSecretVersion from the versions a test puts into it.
package secretsfake

import (
	"context"
	"hash/crc32"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// versionRE matches the version names the fake accepts in requests; numbered
// is the subset Put accepts, because Secret Manager numbers versions itself
// and "latest" is only ever an alias.
var (
	versionRE  = regexp.MustCompile(`^projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255}/versions/(?:[0-9]+|latest)$`)
	numberedRE = regexp.MustCompile(`^projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255}/versions/[0-9]+$`)
)

// Server is a fake Secret Manager. Only AccessSecretVersion is supported;
// every other call answers Unimplemented and says so.
type Server struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer

	t    testing.TB
	addr string

	mu       sync.Mutex
	payloads map[string]string // by numbered version name
	latest   map[string]string // secret name to the numbered name put last
	denied   map[string]bool
	corrupt  map[string]bool
	calls    int
}

// New starts a fake on 127.0.0.1 and stops it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("secretsfake: listen: %v", err)
	}
	s := &Server{
		t:        t,
		addr:     lis.Addr().String(),
		payloads: map[string]string{},
		latest:   map[string]string{},
		denied:   map[string]bool{},
		corrupt:  map[string]bool{},
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(s.intercept))
	secretmanagerpb.RegisterSecretManagerServiceServer(srv, s)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return s
}

// Addr is the fake's host:port, for secrets.New's endpoint.
func (s *Server) Addr() string { return s.addr }

// Put stores payload as version, a numbered version name such as
// projects/p/secrets/s/versions/1. The secret's "latest" then resolves to it,
// as it would to the newest version added to Secret Manager.
func (s *Server) Put(version, payload string) {
	s.t.Helper()
	if !numberedRE.MatchString(version) {
		s.t.Fatalf("secretsfake: Put(%q): want projects/P/secrets/S/versions/N with N a number", version)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.payloads[version] = payload
	s.latest[secretOf(version)] = version
}

// Deny makes requests for version answer PermissionDenied, as Secret Manager
// does when the caller lacks roles/secretmanager.secretAccessor. A numbered
// version is also denied when it is reached through "latest".
func (s *Server) Deny(version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[version] = true
}

// Corrupt makes answers for version carry a checksum that does not match the
// payload, so a test can check that the client notices.
func (s *Server) Corrupt(version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.corrupt[version] = true
}

// Calls is how many calls the fake received, refused ones included: a test
// that a malformed name is rejected before any call checks it stays 0.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// AccessSecretVersion answers like Secret Manager: the payload with its
// CRC32C checksum, and the version's numbered name even when "latest" was
// asked for.
func (s *Server) AccessSecretVersion(ctx context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	name := req.GetName()
	if !versionRE.MatchString(name) {
		return nil, status.Errorf(codes.InvalidArgument, "secretsfake: invalid resource field value in the request: %q is not a secret version name", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resolved := name
	if strings.HasSuffix(name, "/versions/latest") {
		resolved = s.latest[secretOf(name)]
	}
	// Secret Manager checks permission before existence, so that a caller
	// without access cannot learn which secrets exist.
	if s.denied[name] || s.denied[resolved] {
		return nil, status.Errorf(codes.PermissionDenied, "Permission 'secretmanager.versions.access' denied for resource '%s' (or it may not exist).", name)
	}
	payload, ok := s.payloads[resolved]
	if !ok {
		if resolved == "" {
			return nil, status.Errorf(codes.NotFound, "Secret [%s] not found or has no versions.", secretOf(name))
		}
		return nil, status.Errorf(codes.NotFound, "Secret Version [%s] not found.", name)
	}
	sum := int64(crc32.Checksum([]byte(payload), crc32.MakeTable(crc32.Castagnoli)))
	if s.corrupt[name] || s.corrupt[resolved] {
		sum ^= 1
	}
	return &secretmanagerpb.AccessSecretVersionResponse{
		Name:    resolved,
		Payload: &secretmanagerpb.SecretPayload{Data: []byte(payload), DataCrc32C: &sum},
	}, nil
}

// intercept counts every call and rewrites the embedded server's
// Unimplemented answer so a test reading it knows the fake, not Secret
// Manager, is missing the call.
func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	resp, err := handler(ctx, req)
	if status.Code(err) == codes.Unimplemented {
		return nil, status.Errorf(codes.Unimplemented, "secretsfake: %s is not supported by the fake", info.FullMethod)
	}
	return resp, err
}

// secretOf returns the secret a version name belongs to.
func secretOf(version string) string {
	secret, _, _ := strings.Cut(version, "/versions/")
	return secret
}
