package redo

// Step is one kind of I/O a log makes; a Trace function learns of each
// before it is made.
type Step int

const (
	// LogWrite writes to the log file: a write of the edit, the table
	// or the footer.
	LogWrite Step = iota
	// LogSync makes the log file durable; the second of a commit is the
	// moment the edit happens.
	LogSync
	// DirSync makes the log's directory entry (its creation or removal)
	// durable.
	DirSync
	// DeviceWrite writes logged bytes to the device, after the commit or
	// in a replay.
	DeviceWrite
	// DeviceFlush makes the device durable before the log goes.
	DeviceFlush
	// LogRemove removes the log file once the device holds its writes.
	LogRemove
)

var stepNames = [...]string{"log write", "log sync", "directory sync", "device write", "device flush", "log removal"}

func (s Step) String() string {
	if int(s) < len(stepNames) {
		return stepNames[s]
	}
	return "step?"
}

// Trace is called before each step a log makes, in order, from the
// goroutine making it: to report progress, or (in crash tests) to stop
// the process at a chosen step.
type Trace func(Step)

func (t Trace) step(s Step) {
	if t != nil {
		t(s)
	}
}
