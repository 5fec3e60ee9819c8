package poller

// This file holds the domain's rules as pure functions. The store calls them
// inside its transactions and the presentation calls them to show what was
// decided, so each rule has one home and is tested without a database.

// CheckShrink compares a success holding entities with the previous success
// of the same project and filter: it returns the shrink when the new one
// holds more than warn (0.1 for 10%) fewer entities, and false otherwise or
// when warn is 0 (no warning configured).
func CheckShrink(previous Success, name string, entities int64, warn float64) (Shrink, bool) {
	if warn <= 0 || previous.Name == "" || previous.Name == name {
		return Shrink{}, false
	}
	sh := Shrink{PreviousName: previous.Name, PreviousEntities: previous.Entities, Entities: entities}
	if float64(entities) < float64(previous.Entities)*(1-warn) {
		return sh, true
	}
	return Shrink{}, false
}

// ProjectID is the operation's project: the Project field, or the project
// its name carries when the field was not filled in.
func (op Operation) ProjectID() string {
	if op.Project != "" {
		return op.Project
	}
	p, _ := ParseName(op.Name)
	return p
}

// ReportOf is what rec tells as a report: its outcome, its latest snapshot,
// how it was polled, and for a refused start the API's refusal. A shrink or
// a staleness alarm is not part of the record; the poller adds them.
func ReportOf(rec Record) Report {
	r := Report{Outcome: rec.Outcome, Operation: rec.Operation, Polls: rec.Polls, LastError: rec.LastError, Message: rec.Message}
	if rec.Refused {
		r.StartError = rec.ErrorMessage
	}
	return r
}
