//go:build !jailmgr_init

package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"jailmgr/internal/names"
)

// DefaultRunDir holds one folder per open session.
// A var so that a build can bake another (make install RUNDIR=...).
var DefaultRunDir = "/run/jailmgr/sessions"

var (
	// ErrNoSession is returned for an id that names no open session.
	ErrNoSession = errors.New("session: no such session")
	// ErrDenied is returned when the user may not use a jail or session.
	ErrDenied = errors.New("session: access denied")
)

// State is what a session's state file records. It is written once the
// session is up, atomically, and read by every other command.
type State struct {
	ID string `json:"id"`
	// Instance tells this session from a later one of the same name (a
	// name is free again once its session has ended): what acts on a
	// state it read checks that the instance is still the one there.
	Instance  string `json:"instance,omitempty"`
	Jail      string `json:"jail"`
	Image     string `json:"image,omitempty"`     // name:version
	Directory string `json:"directory,omitempty"` // for directory jails
	Type      string `json:"type"`
	Root      string `json:"root"`  // the session's root, mounted on the host
	Upper     string `json:"upper"` // overlay upper and work dirs ("" if none)
	Keep      bool   `json:"keep"`  // Upper outlives the session (persistent image jail)
	User      string `json:"user"`
	UID       int    `json:"uid"`
	GID       int    `json:"gid"`
	InitPid   int    `json:"init_pid"`
	InitStart uint64 `json:"init_start"` // start time of the init, to tell pid reuse
	Cgroup    string `json:"cgroup"`
	// Environment is the jail's environment setting (clean or preserve).
	Environment string `json:"environment"`
	// RootAllowed is whether the owner may run commands as root inside.
	RootAllowed bool `json:"root_allowed"`
	// Repack is the archive End packs the root back into ("" for none);
	// the unpacked root is the rootfs folder of Upper.
	Repack string `json:"repack,omitempty"`
	// Labels are the Spec's labels.
	Labels  map[string]string `json:"labels,omitempty"`
	Created time.Time         `json:"created"`
	Dir     string            `json:"-"` // the state folder
}

// Socket is the control socket of the session's init.
func (s *State) Socket() string { return filepath.Join(s.Dir, "ctl.sock") }

func writeState(s *State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("write session state: %w", err)
	}
	tmp := filepath.Join(s.Dir, ".state.json.tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write session state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.Dir, "state.json")); err != nil {
		return fmt.Errorf("write session state: %w", err)
	}
	return nil
}

// readState reads the state of the session in dir.
func readState(dir string) (*State, error) {
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, err
	}
	s := &State{}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, &DamagedError{ID: filepath.Base(dir), Dir: dir, Err: err}
	}
	if s.ID != filepath.Base(dir) {
		return nil, &DamagedError{ID: filepath.Base(dir), Dir: dir, Err: fmt.Errorf("it names session %q", s.ID)}
	}
	s.Dir = dir
	return s, nil
}

// DamagedError is a session whose state file cannot be read (a crash
// mid-write of a disk, a hand edit). It stops nothing but itself: List
// reports it beside the others, and End removes what is left of it.
type DamagedError struct {
	ID  string
	Dir string
	Err error
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("session %s: damaged state file %s: %v ('jailmgr session end %s' as root removes it)", e.ID, filepath.Join(e.Dir, "state.json"), e.Err, e.ID)
}

func (e *DamagedError) Unwrap() error { return e.Err }

// Alive reports whether the session's init still runs (the same process:
// a reused pid has another start time). A zombie does not: once a begin
// has exited, the init's parent is the host's pid 1, which may take its
// time to reap it.
func (s *State) Alive() bool {
	start, err := processStart(s.InitPid)
	return err == nil && start == s.InitStart && !processDead(s.InitPid)
}

// processDead reports whether a process is a zombie (or being reaped):
// field 3 of /proc/PID/stat.
func processDead(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 || i+2 >= len(data) {
		return true
	}
	return data[i+2] == 'Z' || data[i+2] == 'X'
}

// processStart is a process's start time in clock ticks since boot, field
// 22 of /proc/PID/stat.
func processStart(pid int) (uint64, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("%w: pid %d", fs.ErrNotExist, pid)
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses; the
	// fields after it start at the last ')'.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// ValidID reports whether id can name a session.
func ValidID(id string) bool { return names.Valid(id, 100) }

// Get reads one session's state.
func Get(runDir, id string) (*State, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("%w: %q is not a session id (see 'jailmgr session list')", ErrNoSession, id)
	}
	s, err := readState(filepath.Join(runDir, id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (see 'jailmgr session list')", ErrNoSession, id)
	}
	return s, err
}

// List reads every session's state, sorted by creation. Sessions whose
// state is damaged are left out of the list and returned in the error, a
// join of *DamagedError, beside the list of the others; any other error
// means no list.
func List(runDir string) ([]*State, error) {
	ents, err := os.ReadDir(runDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	var out []*State
	var damaged []error
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		s, err := readState(filepath.Join(runDir, e.Name()))
		var d *DamagedError
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // being set up or torn down
		case errors.As(err, &d):
			damaged = append(damaged, d)
			continue
		case err != nil:
			// Unreadable (not garbled): reported like a damaged one, so
			// that one bad folder never hides the others.
			damaged = append(damaged, &DamagedError{ID: e.Name(), Dir: filepath.Join(runDir, e.Name()), Err: err})
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, errors.Join(damaged...)
}

// OnlyDamaged tells whether err, from List, reports damaged sessions and
// nothing worse: the list beside it holds every other session.
func OnlyDamaged(err error) bool {
	d, others := damagedIn(err)
	return len(d) > 0 && !others
}

// damagedIn splits an error from List into the damaged sessions it
// reports, and whether it holds anything else.
func damagedIn(err error) (damaged []*DamagedError, others bool) {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var d *DamagedError
		if errors.As(e, &d) {
			damaged = append(damaged, d)
		} else if e != nil {
			others = true
		}
	}
	return damaged, others
}
