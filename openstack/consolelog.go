package openstack

import "strings"

// anchorLen is how much of the end of the previous console log is looked
// for in the next one when the next no longer starts with the previous
// (Nova sends only the log's end, so its start moves once it is long).
const anchorLen = 1024

// consoleFollower turns successive whole console logs, as Nova's
// os-getConsoleOutput returns them, into the text that is new in each.
type consoleFollower struct {
	prev string
}

// next takes the log now and returns what was added since the last call.
// When the log's start has moved, the end of the previous log is found in
// the new one and what follows it is new; when it cannot be found (the
// log was cut by more than it grew, or replaced), the whole log is new.
// Text seen twice is harmless (a marker counts once); text skipped could
// hide a marker, so the search prefers the first place the anchor occurs.
func (f *consoleFollower) next(log string) string {
	prev := f.prev
	f.prev = log
	if strings.HasPrefix(log, prev) {
		return log[len(prev):]
	}
	anchor := prev
	if len(anchor) > anchorLen {
		anchor = anchor[len(anchor)-anchorLen:]
	}
	if i := strings.Index(log, anchor); i >= 0 {
		return log[i+len(anchor):]
	}
	return log
}
