package poller

import (
	"encoding/json"
	"time"
)

// recordJSON is the one JSON shape of a record, shared by the HTTP API and `dsexport list --json`.
type recordJSON struct {
	Name              string   `json:"name"`
	Project           string   `json:"project"`
	Database          string   `json:"database"`
	Target            string   `json:"target,omitempty"`
	SnapshotTime      *string  `json:"snapshotTime,omitempty"`
	Trigger           Trigger  `json:"trigger,omitempty"`
	State             State    `json:"state"`
	Done              bool     `json:"done"`
	Polls             int      `json:"polls"`
	Outcome           Outcome  `json:"outcome"`
	Reported          bool     `json:"reported"`
	ReportedAt        *string  `json:"reportedAt,omitempty"`
	Created           string   `json:"created"`
	StartTime         *string  `json:"startTime,omitempty"`
	EndTime           *string  `json:"endTime,omitempty"`
	Kinds             []string `json:"kinds"`
	Namespaces        []string `json:"namespaces"`
	OutputURLPrefix   string   `json:"outputUrlPrefix,omitempty"`
	OutputURL         string   `json:"outputUrl,omitempty"`
	EntitiesCompleted int64    `json:"entitiesCompleted"`
	EntitiesEstimated int64    `json:"entitiesEstimated"`
	BytesCompleted    int64    `json:"bytesCompleted"`
	BytesEstimated    int64    `json:"bytesEstimated"`
	ErrorCode         int      `json:"errorCode,omitempty"`
	ErrorMessage      string   `json:"errorMessage,omitempty"`
}

// MarshalJSON writes the record with lower-camel field names and RFC 3339 times.
func (r Record) MarshalJSON() ([]byte, error) {
	kinds, namespaces := r.Kinds, r.Namespaces
	if kinds == nil {
		kinds = []string{}
	}
	if namespaces == nil {
		namespaces = []string{}
	}
	return json.Marshal(recordJSON{
		Name: r.Name, Project: r.Project, Database: r.DatabaseOf(), Target: r.Target, SnapshotTime: timeJSON(r.SnapshotTime), Trigger: r.Trigger, State: r.State, Done: r.Done,
		Polls: r.Polls, Outcome: r.Outcome, Reported: r.Reported(), ReportedAt: timeJSON(r.ReportedAt),
		Created: r.Created.UTC().Format(time.RFC3339Nano), StartTime: timeJSON(r.StartTime), EndTime: timeJSON(r.EndTime),
		Kinds: kinds, Namespaces: namespaces, OutputURLPrefix: r.OutputURLPrefix, OutputURL: r.OutputURL,
		EntitiesCompleted: r.EntitiesCompleted, EntitiesEstimated: r.EntitiesEstimated,
		BytesCompleted: r.BytesCompleted, BytesEstimated: r.BytesEstimated,
		ErrorCode: r.ErrorCode, ErrorMessage: r.ErrorMessage,
	})
}

func timeJSON(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339Nano)
	return &s
}
