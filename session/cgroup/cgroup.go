// Package cgroup puts a jail session's processes in a control group: it
// limits their memory, CPU and number of tasks, reports what they use, and
// kills every one of them at the end, including those that escaped the
// session's process tree by double-forking.
//
// It works on the unified cgroup v2 hierarchy, on cgroup v1 controller
// hierarchies, and on the hybrid of both that systemd sets up on older
// distributions. The layout is read from /proc/self/mountinfo, never assumed
// from fixed paths. A controller is used on v2 when the unified hierarchy
// offers it and on its v1 hierarchy otherwise; the unified hierarchy, when it
// is mounted at all, also holds the group, because it tracks processes (and
// can kill them with cgroup.kill) even with no controller enabled.
//
// A group named "jailmgr/<id>" is the directory jailmgr/<id> under the root
// of every hierarchy used, so a later jailmgr run (recover) finds it whatever
// cgroup that run itself sits in.
//
// Limits: a limit whose controller is mounted nowhere is an error, not a
// silent no-op. Memory accounting cannot stop a process from using swap
// unless the kernel accounts swap too (v1 memory.memsw.*, v2
// memory.swap.max); where it does not, the memory limit bounds RAM only.
// Processes are moved in with Add, after they have started: a child that
// forks before it is moved leaves its early children behind, so the session
// starts its init blocked until Add has run.
package cgroup

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrNotFound is wrapped when a group does not exist in any hierarchy.
	ErrNotFound = errors.New("cgroup: group not found")
	// ErrExists is wrapped when Create finds the group already there.
	ErrExists = errors.New("cgroup: group exists")
	// ErrInvalidName is wrapped for group names that are empty, absolute,
	// climb with "..", or hold characters a group name may not have.
	ErrInvalidName = errors.New("cgroup: invalid group name")
	// ErrInvalidLimit is wrapped for negative, NaN or out-of-range limits.
	ErrInvalidLimit = errors.New("cgroup: invalid limit")
	// ErrInvalidPID is wrapped when Add is given a pid below 1 (writing 0 to
	// cgroup.procs would move the caller itself).
	ErrInvalidPID = errors.New("cgroup: invalid process id")
	// ErrUnsupported is wrapped when a limit needs a controller that no
	// mounted hierarchy provides.
	ErrUnsupported = errors.New("cgroup: controller not available")
	// ErrNoCgroups is wrapped when no cgroup hierarchy is mounted.
	ErrNoCgroups = errors.New("cgroup: no cgroup hierarchy mounted")
	// ErrContainsSelf is wrapped when Kill would kill the calling process.
	ErrContainsSelf = errors.New("cgroup: group contains the calling process")
	// ErrSurvivors is wrapped by KillError when processes outlive Kill.
	ErrSurvivors = errors.New("cgroup: processes survived kill")
	// ErrMalformed is wrapped by ParseError.
	ErrMalformed = errors.New("cgroup: malformed input")
)

// Limits are the resource limits of a group. A zero field sets no limit.
type Limits struct {
	Memory int64   // bytes of memory (and, where the kernel accounts it, memory plus swap)
	CPUs   float64 // cores' worth of CPU time per period, e.g. 0.5
	Pids   int     // tasks (threads count) in the group at once
}

// Usage is what a group's processes use now.
type Usage struct {
	MemoryBytes int64 // memory charged to the group; 0 without a memory controller
	// Pids counts tasks (threads included, as pids.max does) when the pids
	// controller is there, and processes otherwise.
	Pids    int
	CPUTime time.Duration // CPU time used since the group was created
}

// WriteError records a write to a cgroup file that the kernel refused.
type WriteError struct {
	Path  string // the file written
	Value string
	Err   error
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("write %q to %s: %v", e.Value, e.Path, e.Err)
}
func (e *WriteError) Unwrap() error { return e.Err }

// KillError reports the processes still in a group when Kill gave up.
type KillError struct {
	Group string
	Pids  []int
	After time.Duration
}

func (e *KillError) Error() string {
	shown := e.Pids[:min(len(e.Pids), 10)]
	return fmt.Sprintf("kill group %s: %d processes left after %v %v: %v",
		e.Group, len(e.Pids), e.After, shown, ErrSurvivors)
}
func (e *KillError) Unwrap() error { return ErrSurvivors }

// ParseError names the input, line and field that could not be parsed.
type ParseError struct {
	Input string
	Line  int
	Field string
	Err   error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("parse %s line %d field %s: %v", e.Input, e.Line, e.Field, e.Err)
}
func (e *ParseError) Unwrap() error { return e.Err }
