package count

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dsexport/dsexport/poller"
)

// TestTransientErrors: a failure that may pass is poller.ErrTransient, so
// that a drill tries its step again instead of failing on a blip; the
// cause stays reachable.
func TestTransientErrors(t *testing.T) {
	for _, tt := range []struct {
		cause     error
		transient bool
	}{
		{status.Error(codes.Unavailable, "connection refused"), true},
		{fmt.Errorf("rpc: %w", status.Error(codes.ResourceExhausted, "quota")), true},
		{context.DeadlineExceeded, true},
		{status.Error(codes.PermissionDenied, "denied"), false},
		{status.Error(codes.InvalidArgument, "bad"), false},
		{context.Canceled, false},
	} {
		err := wrap("count", "p", "(default)", "", "Order", tt.cause)
		if got := errors.Is(err, poller.ErrTransient); got != tt.transient {
			t.Errorf("%v: transient %v; want %v", tt.cause, got, tt.transient)
		}
		if !errors.Is(err, tt.cause) {
			t.Errorf("%v: cause not reachable through %v", tt.cause, err)
		}
	}
}
