package poller

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Check is the result of one preflight check (dsexport doctor): what was
// checked, for which target, whether it passed, what was found, and, when
// it failed, the command that fixes it.
type Check struct {
	// Name says what was checked ("bucket exists", "service agent can
	// write"); Target is the configured target's name ("" for a check of
	// the deployment, Slack or the queue).
	Name   string `json:"name"`
	Target string `json:"target,omitempty"`
	OK     bool   `json:"ok"`
	// Warning marks a check that could not decide (a location pair the
	// table does not know, a project number not given): OK is true, and
	// the detail says what is unknown.
	Warning bool `json:"warning,omitempty"`
	// Detail is what the check found, at most MaxErrorText bytes.
	Detail string `json:"detail"`
	// Fix is a command to paste that fixes a failure ("" when OK or when
	// no one command does).
	Fix string `json:"fix,omitempty"`
}

// CheckFunc is one check. It returns the checks it made (one or more: a
// bucket's attributes answer several questions); an error is a failure of
// the check itself and becomes a failed Check named name.
type CheckFunc struct {
	Name   string
	Target string
	Run    func(ctx context.Context) ([]Check, error)
}

// DefaultCheckTimeout bounds each check Doctor runs.
const DefaultCheckTimeout = 10 * time.Second

// Doctor runs preflight checks one after the other, each within Timeout: a
// check that fails, errs, panics or runs out of time never stops the
// others.
type Doctor struct {
	Checks []CheckFunc
	// Timeout bounds each check (0: DefaultCheckTimeout).
	Timeout time.Duration
}

// Run runs every check and returns their results in order, bounded
// (BoundText). A cancelled ctx makes the checks not yet run fail with the
// context's error, so the list still names them all.
func (d Doctor) Run(ctx context.Context) []Check {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	var out []Check
	for _, cf := range d.Checks {
		for _, c := range runCheck(ctx, cf, timeout) {
			c.Name = BoundText(c.Name, MaxLabel)
			c.Target = BoundText(c.Target, MaxLabel)
			c.Detail = BoundText(c.Detail, MaxErrorText)
			c.Fix = BoundText(c.Fix, MaxErrorText)
			out = append(out, c)
		}
	}
	return out
}

// runCheck runs cf within timeout; its error, a panic or an empty answer is
// one failed Check.
func runCheck(ctx context.Context, cf CheckFunc, timeout time.Duration) (checks []Check) {
	failed := func(detail string) []Check {
		return []Check{{Name: cf.Name, Target: cf.Target, Detail: detail}}
	}
	if err := ctx.Err(); err != nil {
		return failed("not run: " + err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			checks = failed(fmt.Sprintf("the check panicked: %v", r))
		}
	}()
	checks, err := cf.Run(ctx)
	switch {
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return failed(fmt.Sprintf("no answer within %v: %v", timeout, err))
	case err != nil:
		return failed(err.Error())
	case len(checks) == 0:
		return failed("the check returned nothing")
	}
	for i := range checks {
		if checks[i].Name == "" {
			checks[i].Name = cf.Name
		}
		if checks[i].Target == "" {
			checks[i].Target = cf.Target
		}
	}
	return checks
}

// Failed counts the checks that failed.
func Failed(checks []Check) int {
	n := 0
	for _, c := range checks {
		if !c.OK {
			n++
		}
	}
	return n
}
