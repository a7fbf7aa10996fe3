package boot

import (
	"regexp"
	"strings"
	"time"
)

// A Marker is a console line that means something: a phase of the boot
// starting, something the test waits for, or a failure.
type Marker struct {
	Name    string         // what it means, for reports ("login prompt")
	Pattern *regexp.Regexp // matched against one clean console line
}

// Markers are what a Watcher looks for. A boot succeeds when every Expect
// marker has been seen (each once, in any order) and fails on the first
// Fail marker or broken Order; Phases are timed.
type Markers struct {
	Expect []Marker
	Fail   []Marker
	Phases []Marker
	Orders []Order
}

// An Order is a failure that shows as phases in the wrong order: when the
// phase named Later appears before the one named Earlier, Earlier is not
// going to come (cloud-init runs before the login prompt, or not at all).
type Order struct {
	Earlier, Later string // names of markers in Phases
	Failure        string // the failure's name
}

// A Sighting is a marker seen on the console: when (since the machine
// started) and on which line.
type Sighting struct {
	Name string
	At   time.Duration
	Line string
}

// State is what the console has said so far.
type State int

const (
	Waiting   State = iota // some expected markers are still missing
	Succeeded              // every expected marker has been seen
	Failed                 // a failure marker was seen
)

// A Watcher reads a console line by line and decides whether a boot
// succeeded, failed or is still going. It keeps no lines, only the
// sightings, so it can watch a console of any length; a failure marker
// decides for good, even after every expected marker was seen, and
// nothing after it changes the verdict.
//
// Lines are clean text (see CleanLine); one that has not ended yet may be
// given again as it grows (a login prompt ends without a newline), since
// a marker counts once.
type Watcher struct {
	markers    Markers
	phaseSeen  []bool // by index in markers.Phases
	expectSeen []bool // by index in markers.Expect
	phases     []Sighting
	matched    []Sighting
	failure    *Sighting
}

// NewWatcher watches for m.
func NewWatcher(m Markers) *Watcher {
	return &Watcher{markers: m, phaseSeen: make([]bool, len(m.Phases)), expectSeen: make([]bool, len(m.Expect))}
}

// Line checks one console line seen at time at and returns the state
// after it.
func (w *Watcher) Line(line string, at time.Duration) State {
	if w.failure != nil {
		// A failure seen on a line still being written ("FAILED: " before
		// its reason) is reported with the whole line once it is given
		// again, grown.
		if len(line) > len(w.failure.Line) && strings.HasPrefix(line, w.failure.Line) {
			w.failure.Line = line
		}
		return Failed
	}
	for _, m := range w.markers.Fail {
		if m.Pattern.MatchString(line) {
			w.failure = &Sighting{Name: m.Name, At: at, Line: line}
			return Failed
		}
	}
	seen := len(w.phases)
	w.phases = sight(w.phases, w.markers.Phases, w.phaseSeen, line, at)
	for _, p := range w.phases[seen:] {
		if o, broken := w.brokenOrder(p.Name); broken {
			w.failure = &Sighting{Name: o.Failure, At: at, Line: line}
			return Failed
		}
	}
	w.matched = sight(w.matched, w.markers.Expect, w.expectSeen, line, at)
	return w.State()
}

// brokenOrder returns the Order that phase, just seen, breaks.
func (w *Watcher) brokenOrder(phase string) (Order, bool) {
	for _, o := range w.markers.Orders {
		if o.Later == phase && !w.sawPhase(o.Earlier) {
			return o, true
		}
	}
	return Order{}, false
}

// sawPhase reports whether the phase named name has been seen.
func (w *Watcher) sawPhase(name string) bool {
	for _, p := range w.phases {
		if p.Name == name {
			return true
		}
	}
	return false
}

// sight appends to got the markers of ms not seen before that match line
// and marks them in seen.
func sight(got []Sighting, ms []Marker, seen []bool, line string, at time.Duration) []Sighting {
	for i, m := range ms {
		if !seen[i] && m.Pattern.MatchString(line) {
			seen[i] = true
			got = append(got, Sighting{Name: m.Name, At: at, Line: line})
		}
	}
	return got
}

// State is the verdict so far.
func (w *Watcher) State() State {
	switch {
	case w.failure != nil:
		return Failed
	case len(w.Missing()) == 0:
		return Succeeded
	}
	return Waiting
}

// Missing names the expected markers not seen yet.
func (w *Watcher) Missing() []string {
	var names []string
	for i, m := range w.markers.Expect {
		if !w.expectSeen[i] {
			names = append(names, m.Name)
		}
	}
	return names
}

// Phases are the phase markers seen, in the order they appeared.
func (w *Watcher) Phases() []Sighting { return append([]Sighting(nil), w.phases...) }

// Matched are the expected markers seen, in the order they appeared.
func (w *Watcher) Matched() []Sighting { return append([]Sighting(nil), w.matched...) }

// Failure is the failure marker that decided the boot, or nil.
func (w *Watcher) Failure() *Sighting {
	if w.failure == nil {
		return nil
	}
	f := *w.failure
	return &f
}
