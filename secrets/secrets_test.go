package secrets_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dsexport/dsexport/secrets"
	"github.com/dsexport/dsexport/secrets/secretsfake"
)

const (
	token  = "xoxb-1111-2222-abcdefghijklmnop"
	secret = "projects/my-app/secrets/slack-token"
	v1     = secret + "/versions/1"
	v2     = secret + "/versions/2"
	latest = secret + "/versions/latest"
)

// newSource connects a real Source to fake over gRPC.
func newSource(t *testing.T, fake *secretsfake.Server) *secrets.Source {
	t.Helper()
	src, err := secrets.New(context.Background(), fake.Addr())
	if err != nil {
		t.Fatalf("secrets.New: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func TestGet(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*secretsfake.Server)
		version string
		want    string
	}{
		{
			name:    "numbered version",
			setup:   func(f *secretsfake.Server) { f.Put(v1, token) },
			version: v1,
			want:    token,
		},
		{
			name:    "older version stays readable",
			setup:   func(f *secretsfake.Server) { f.Put(v1, "old"); f.Put(v2, token) },
			version: v1,
			want:    "old",
		},
		{
			name:    "latest is the newest version",
			setup:   func(f *secretsfake.Server) { f.Put(v1, "old"); f.Put(v2, token) },
			version: latest,
			want:    token,
		},
		{
			name:    "trailing newline from echo is trimmed",
			setup:   func(f *secretsfake.Server) { f.Put(v1, token+"\n") },
			version: v1,
			want:    token,
		},
		{
			name:    "trailing CRLF is trimmed",
			setup:   func(f *secretsfake.Server) { f.Put(v1, token+"\r\n") },
			version: v1,
			want:    token,
		},
		{
			name:    "only one trailing newline is trimmed",
			setup:   func(f *secretsfake.Server) { f.Put(v1, "line\n\n") },
			version: v1,
			want:    "line\n",
		},
		{
			name:    "other whitespace is kept",
			setup:   func(f *secretsfake.Server) { f.Put(v1, " a b ") },
			version: v1,
			want:    " a b ",
		},
		{
			name:    "project number and underscores",
			setup:   func(f *secretsfake.Server) { f.Put("projects/123456789012/secrets/SLACK_webhook/versions/17", token) },
			version: "projects/123456789012/secrets/SLACK_webhook/versions/17",
			want:    token,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := secretsfake.New(t)
			tt.setup(fake)
			src := newSource(t, fake)
			got, err := src.Get(context.Background(), tt.version)
			if err != nil {
				t.Fatalf("Get(%q): %v", tt.version, err)
			}
			if got != tt.want {
				t.Fatalf("Get(%q) = %q; want %q", tt.version, got, tt.want)
			}
			if got, want := fake.Calls(), 1; got != want {
				t.Fatalf("fake got %d calls; want %d", got, want)
			}
		})
	}
}

func TestGetErrors(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(*secretsfake.Server)
		version  string
		code     codes.Code // codes.OK: the error is not a gRPC one
		contains []string
	}{
		{
			name:     "unknown version",
			setup:    func(f *secretsfake.Server) { f.Put(v1, token) },
			version:  v2,
			code:     codes.NotFound,
			contains: []string{"read secret " + v2 + ": ", "no such secret or version"},
		},
		{
			name:     "latest of unknown secret",
			setup:    func(f *secretsfake.Server) { f.Put(v1, token) },
			version:  "projects/my-app/secrets/other/versions/latest",
			code:     codes.NotFound,
			contains: []string{"read secret projects/my-app/secrets/other/versions/latest: ", "no such secret or version"},
		},
		{
			name:     "permission denied",
			setup:    func(f *secretsfake.Server) { f.Put(v1, token); f.Deny(v1) },
			version:  v1,
			code:     codes.PermissionDenied,
			contains: []string{"read secret " + v1 + ": ", "needs roles/secretmanager.secretAccessor on it"},
		},
		{
			name:     "permission denied through latest",
			setup:    func(f *secretsfake.Server) { f.Put(v1, token); f.Deny(v1) },
			version:  latest,
			code:     codes.PermissionDenied,
			contains: []string{"read secret " + latest + ": ", "needs roles/secretmanager.secretAccessor on it"},
		},
		{
			name:     "checksum mismatch",
			setup:    func(f *secretsfake.Server) { f.Put(v1, token); f.Corrupt(v1) },
			version:  v1,
			contains: []string{"read secret " + v1 + ": ", "corrupt", "CRC32C"},
		},
		{
			name:     "checksum mismatch through latest",
			setup:    func(f *secretsfake.Server) { f.Put(v1, token); f.Corrupt(v1) },
			version:  latest,
			contains: []string{"read secret " + latest + ": ", "corrupt"},
		},
		{
			name:     "empty payload",
			setup:    func(f *secretsfake.Server) { f.Put(v1, "") },
			version:  v1,
			contains: []string{"read secret " + v1 + ": ", "empty"},
		},
		{
			name:     "payload of only a newline",
			setup:    func(f *secretsfake.Server) { f.Put(v1, "\n") },
			version:  v1,
			contains: []string{"read secret " + v1 + ": ", "empty"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := secretsfake.New(t)
			tt.setup(fake)
			src := newSource(t, fake)
			got, err := src.Get(context.Background(), tt.version)
			if err == nil {
				t.Fatalf("Get(%q) = %q, nil; want an error", tt.version, got)
			}
			if got != "" {
				t.Fatalf("Get(%q) = %q with an error; want \"\"", tt.version, got)
			}
			msg := err.Error()
			for _, want := range tt.contains {
				if !strings.Contains(msg, want) {
					t.Errorf("Get(%q) error %q does not contain %q", tt.version, msg, want)
				}
			}
			if strings.Contains(msg, token) {
				t.Errorf("Get(%q) error %q contains the secret payload", tt.version, msg)
			}
			if tt.code != codes.OK {
				if got, want := status.Code(err), tt.code; got != want {
					t.Errorf("Get(%q) error code = %v; want %v", tt.version, got, want)
				}
			}
		})
	}
}

func TestGetRejectsBadNames(t *testing.T) {
	tests := []struct {
		name    string
		version string
	}{
		{"empty", ""},
		{"token pasted instead of a name", token},
		{"secret without version", secret},
		{"trailing slash", v1 + "/"},
		{"leading space", " " + v1},
		{"version zero", secret + "/versions/0"},
		{"negative version", secret + "/versions/-1"},
		{"capitalised latest", secret + "/versions/LATEST"},
		{"version alias", secret + "/versions/prod"},
		{"dot in secret", "projects/my-app/secrets/slack.token/versions/1"},
		{"secret too long", "projects/my-app/secrets/" + strings.Repeat("s", 256) + "/versions/1"},
		{"capitalised project", "projects/My-App/secrets/s/versions/1"},
		{"short project", "projects/app/secrets/s/versions/1"},
		{"regional secret", "projects/my-app/locations/us-east1/secrets/s/versions/1"},
		{"secret id alone", "slack-token"},
		{"URL", "https://secretmanager.googleapis.com/v1/" + v1},
	}
	fake := secretsfake.New(t)
	fake.Put(v1, token)
	src := newSource(t, fake)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := src.Get(context.Background(), tt.version)
			if err == nil {
				t.Fatalf("Get(%q) = %q, nil; want an error", tt.version, got)
			}
			if !strings.Contains(err.Error(), "projects/PROJECT/secrets/SECRET/versions/VERSION") {
				t.Errorf("Get(%q) error %q does not show the expected form", tt.version, err)
			}
			if err := secrets.CheckVersion(tt.version); err == nil {
				t.Errorf("CheckVersion(%q) = nil; want an error", tt.version)
			}
		})
	}
	if got, want := fake.Calls(), 0; got != want {
		t.Fatalf("fake got %d calls for malformed names; want %d", got, want)
	}
}

func TestCheckVersionDoesNotQuoteNonNames(t *testing.T) {
	err := secrets.CheckVersion(token)
	if err == nil {
		t.Fatalf("CheckVersion(token) = nil; want an error")
	}
	if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "xoxb") {
		t.Fatalf("CheckVersion(token) error %q quotes the value, which may be a secret", err)
	}
}

func TestCheckVersionAccepts(t *testing.T) {
	tests := []string{
		v1,
		latest,
		"projects/123456789012/secrets/s/versions/3",
		"projects/example.com:my-app/secrets/s/versions/latest",
		"projects/my-app/secrets/" + strings.Repeat("s", 255) + "/versions/1",
		"projects/a23456789012345678901234567890/secrets/A-b_C/versions/12345678901",
	}
	for _, version := range tests {
		if err := secrets.CheckVersion(version); err != nil {
			t.Errorf("CheckVersion(%q) = %v; want nil", version, err)
		}
	}
}
