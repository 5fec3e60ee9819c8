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
