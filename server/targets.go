package server

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/dsexport/dsexport/poller"
)

// This file is the configured targets: finding the one a request names.

// BackupHistory is what the status page and the API read of the managed
// backups the sweep recorded.
type BackupHistory interface {
	// Backups returns up to limit of the target's recorded backups, newest
	// first by snapshot time.
	Backups(ctx context.Context, target string, limit int) ([]poller.Backup, error)
}

// maxList bounds a list of configured names or projects in an error message.
const maxList = 1024

// targets are the configured targets, or the single one Defaults makes.
func (s *Server) targets() []poller.Target {
	if len(s.cfg.Targets) > 0 {
		return s.cfg.Targets
	}
	d := s.cfg.Defaults
	return []poller.Target{{Project: d.Project, Database: d.Database, Export: &d}}
}

// targetNames lists the configured names for an error message, bounded.
func (s *Server) targetNames() string {
	var names []string
	for _, t := range s.targets() {
		names = append(names, fmt.Sprintf("%q", t.Name))
	}
	return poller.BoundText(strings.Join(names, ", "), maxList)
}

// target finds the target a request names: given tells whether it named
// one at all ("" given is none). Without a name, the only target; 400 when
// there are several, 404 for a name that is not configured. The name is
// from the request: it is quoted bounded.
func (s *Server) target(name string, given bool) (poller.Target, error) {
	ts := s.targets()
	if !given || name == "" {
		if len(ts) == 1 {
			return ts[0], nil
		}
		return poller.Target{}, badRequest("target: required: %d targets are configured (%s)", len(ts), s.targetNames())
	}
	if len(name) > poller.MaxLabel {
		return poller.Target{}, &httpError{status: http.StatusNotFound, msg: fmt.Sprintf("target %q: no target is configured under a name of over %d bytes", poller.BoundText(name, maxQuoted), poller.MaxLabel)}
	}
	if i := slices.IndexFunc(ts, func(t poller.Target) bool { return t.Name == name }); i >= 0 {
		return ts[i], nil
	}
	return poller.Target{}, &httpError{status: http.StatusNotFound, msg: fmt.Sprintf("target %q is not configured; the targets are %s", name, s.targetNames())}
}

// exportOf is the export t's schedule starts: 400 for a target that is only
// watched. It carries the target's name, so that its records do.
func exportOf(t poller.Target) (poller.ExportRequest, error) {
	if t.Export == nil {
		return poller.ExportRequest{}, badRequest("target: %q only watches managed backups: it has no export to start", t.Name)
	}
	req := *t.Export
	req.Kinds = slices.Clone(req.Kinds)
	req.Namespaces = slices.Clone(req.Namespaces)
	req.Target = t.Name
	if req.Project == "" {
		req.Project = t.Project
	}
	return req, nil
}

// scopes are the databases (as poller.Scope names them) of the targets
// and their exports, whose operations the poll task follows.
func (s *Server) scopes() []string {
	var ss []string
	add := func(project, database string) {
		if sc := poller.Scope(project, database); project != "" && !slices.Contains(ss, sc) {
			ss = append(ss, sc)
		}
	}
	add(s.cfg.Defaults.Project, s.cfg.Defaults.Database)
	for _, t := range s.targets() {
		add(t.Project, t.Database)
		if t.Export != nil {
			add(cmp.Or(t.Export.Project, t.Project), cmp.Or(t.Export.Database, t.Database))
		}
	}
	return ss
}

// targetOf finds the configured target of a record ("" : the single one, or
// none).
func (s *Server) targetOf(name string) (poller.Target, bool) {
	for _, t := range s.targets() {
		if t.Name == name {
			return t, true
		}
	}
	return poller.Target{}, false
}
