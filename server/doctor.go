package server

import (
	"context"
	"net/http"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// Doctor runs the preflight checks (dsexport doctor): a poller.Doctor.
type Doctor interface {
	Run(ctx context.Context) []poller.Check
}

// DoctorDeadline bounds GET /api/doctor: the checks run one after the other,
// each bounded by itself, and the answer must come before a client or a
// load balancer gives up.
const DoctorDeadline = 50 * time.Second

// apiDoctor runs the checks on demand and answers them as JSON: 200 when
// every check passed, 503 when one failed (so a probe can tell), with the
// checks in both.
func (s *Server) apiDoctor(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Doctor == nil {
		return &httpError{status: http.StatusServiceUnavailable, msg: "no preflight checks are configured"}
	}
	ctx, cancel := context.WithTimeout(r.Context(), DoctorDeadline)
	defer cancel()
	checks := s.cfg.Doctor.Run(ctx)
	if checks == nil {
		checks = []poller.Check{}
	}
	failed := poller.Failed(checks)
	status := http.StatusOK
	if failed > 0 {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, struct {
		OK     bool           `json:"ok"`
		Failed int            `json:"failed"`
		Checks []poller.Check `json:"checks"`
	}{failed == 0, failed, checks})
	return nil
}
