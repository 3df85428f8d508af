package monitor

import (
	"time"

	"github.com/berth/berth/internal/logs"
)

// The daemon speaks to the monitor over HTTP/1.1 on a unix socket
// (<exec-root>/monitor.sock), JSON in and out:
//
//	POST   /tasks                 CreateRequest → CreateResponse   fork the container's init (blocked before exec)
//	POST   /tasks/{id}/start                                        let it exec the user process
//	POST   /tasks/{id}/kill       KillRequest                       signal it
//	POST   /tasks/{id}/resize     ResizeRequest                     set the pty size
//	POST   /tasks/{id}/attach?stdin=1&stdout=1&stderr=1              hijacked: raw (tty) or multiplexed output,
//	                                                                stdin from the client
//	DELETE /tasks/{id}                                              forget an exited task, delete it in the runtime
//	GET    /tasks                 → []TaskState                     every task, for reconciling after a restart
//	GET    /events                → TaskState per line               exits as they happen (the daemon keeps one)
//	POST   /execs[?attach=1]      ExecRequest → ExecResponse        run a process in a task's container (exec.go)
//	GET    /execs/{id}            → TaskState                       an exec's state and exit code
//	POST   /execs/{id}/resize     ResizeRequest                     set its pty size
//	POST   /execs/{id}/kill       KillRequest                       signal it (a timed-out healthcheck)
//	DELETE /execs/{id}                                              forget an exited exec (once its code is read)
//
// The monitor keeps no state the daemon cannot rebuild from GET /tasks and
// the exit records in each container's directory.

// CreateRequest asks the monitor to create a container from an OCI bundle.
type CreateRequest struct {
	ID     string
	Bundle string // directory holding config.json
	// Dir is the container's directory in the data root: its log and its
	// exit record are written there, so they survive the monitor.
	Dir       string
	TTY       bool
	OpenStdin bool
	StdinOnce bool // close the container's stdin when the first attached client detaches
	Log       logs.Config
}

// CreateResponse tells the pid of the container's init.
type CreateResponse struct {
	Pid int
}

// KillRequest is a signal for the container.
type KillRequest struct {
	Signal int
	All    bool // every process in the container, not only its init
}

// ResizeRequest sets the terminal size of a TTY container.
type ResizeRequest struct {
	Height, Width uint16
}

// Status is where a task is in its life.
type Status string

// Task statuses.
const (
	Created Status = "created" // init forked, waiting for start
	Running Status = "running"
	Exited  Status = "exited"
)

// TaskState is a task as the monitor sees it.
type TaskState struct {
	ID       string
	Pid      int
	Status   Status
	ExitCode int       `json:",omitempty"`
	ExitedAt time.Time `json:",omitzero"`
}

// ExitRecord is written to <Dir>/exit.json when the container's init exits,
// atomically, before anyone is told.
type ExitRecord struct {
	ExitCode int
	ExitedAt time.Time
}
