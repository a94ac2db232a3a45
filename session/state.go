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
const DefaultRunDir = "/run/jailmgr/sessions"

var (
	// ErrNoSession is returned for an id that names no open session.
	ErrNoSession = errors.New("session: no such session")
	// ErrDenied is returned when the user may not use a jail or session.
	ErrDenied = errors.New("session: access denied")
)

// State is what a session's state file records. It is written once the
// session is up, atomically, and read by every other command.
type State struct {
	ID        string `json:"id"`
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
		return nil, fmt.Errorf("read session state %s: %w", dir, err)
	}
	s.Dir = dir
	return s, nil
}

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

// List reads every session's state, sorted by creation.
func List(runDir string) ([]*State, error) {
	ents, err := os.ReadDir(runDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	var out []*State
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		s, err := readState(filepath.Join(runDir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // being set up or torn down
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}
