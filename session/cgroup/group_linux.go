package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const mountinfoPath = "/proc/self/mountinfo"

// Group is a control group that exists in every hierarchy a session uses.
type Group struct {
	name    string
	unified string            // directory in the cgroup2 hierarchy; "" without one
	dirs    []string          // directory in every hierarchy, unified first
	ctl     map[string]ctlDir // controller → directory serving it
}

// ctlDir is the group directory that serves one controller.
type ctlDir struct {
	path string
	v2   bool
}

// Name returns the group's name, as given to Create or Open.
func (g *Group) Name() string { return g.name }

// detect reads the hierarchies from mountinfo and what the unified root
// offers from its cgroup.controllers.
func detect() (*plan, error) {
	f, err := os.Open(mountinfoPath)
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	all, err := parseMountinfo(f, mountinfoPath)
	if err != nil {
		return nil, err
	}
	// A mount hidden by a later mount on it or on a parent directory stays
	// in mountinfo, but its path now leads elsewhere: only mounts whose
	// path still shows their device are used.
	var hs []hierarchy
	for _, h := range all {
		var st unix.Stat_t
		err := unix.Stat(h.mount, &st)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stat cgroup mount: %w", &os.PathError{Op: "stat", Path: h.mount, Err: err})
		}
		if unix.Major(st.Dev) == h.major && unix.Minor(st.Dev) == h.minor {
			hs = append(hs, h)
		}
	}
	var avail []string
	for _, h := range hs {
		if h.unified {
			b, err := os.ReadFile(filepath.Join(h.mount, "cgroup.controllers"))
			if err != nil {
				return nil, fmt.Errorf("read v2 controllers: %w", err)
			}
			avail = strings.Fields(string(b))
			break
		}
	}
	return makePlan(hs, avail)
}

// Layout describes the cgroup layout of this machine: "v2", "v1" or
// "hybrid", then which hierarchy serves each controller a group uses.
func Layout() (string, error) {
	p, err := detect()
	if err != nil {
		return "", fmt.Errorf("detect cgroup layout: %w", err)
	}
	return p.describe(), nil
}

// Create makes the group name (like "jailmgr/<session-id>") in every
// hierarchy used, with limits l. Missing parent groups are created; the
// group itself must not exist. On error nothing Create made is left behind
// (a parent another group shares stays).
func Create(name string, l Limits) (*Group, error) {
	p, err := detect()
	if err != nil {
		return nil, fmt.Errorf("create group %s: %w", name, err)
	}
	return create(p, name, l)
}

func create(p *plan, name string, l Limits) (g *Group, err error) {
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("create group: %w", err)
	}
	writes, err := limitWrites(l, p.v2)
	if err != nil {
		return nil, fmt.Errorf("create group %s: %w", name, err)
	}
	for _, c := range needed(l) {
		if !p.has(c) {
			return nil, fmt.Errorf("create group %s: %s limit: %w", name, c, ErrUnsupported)
		}
	}

	var made []string
	defer func() {
		if err != nil {
			err = errors.Join(err, rollback(made))
		}
	}()
	g = &Group{name: name, ctl: map[string]ctlDir{}}
	if p.unified != nil {
		dir, m, err := makeDir(p.unified.mount, name)
		made = append(made, m...)
		if err != nil {
			return nil, fmt.Errorf("create group %s: %w", name, err)
		}
		if err := enableV2(p.unified.mount, name, p.v2); err != nil {
			return nil, fmt.Errorf("create group %s: %w", name, err)
		}
		g.unified = dir
		g.dirs = append(g.dirs, dir)
		for _, c := range p.v2 {
			g.ctl[c] = ctlDir{path: dir, v2: true}
		}
	}
	for _, h := range p.v1 {
		dir, m, err := makeDir(h.mount, name)
		made = append(made, m...)
		if err != nil {
			return nil, fmt.Errorf("create group %s: %w", name, err)
		}
		g.dirs = append(g.dirs, dir)
		for c, ch := range p.v1ctl {
			if ch == h {
				g.ctl[c] = ctlDir{path: dir}
			}
		}
	}

	for _, w := range writes {
		path := filepath.Join(g.ctl[w.controller].path, w.file)
		if w.optional {
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				continue
			}
		}
		if err := writeFile(path, w.value); err != nil {
			return nil, fmt.Errorf("create group %s: %w", name, err)
		}
	}
	if d, ok := g.ctl["memory"]; ok && !d.v2 && l.Memory != 0 {
		if err := enableOOMKill(d.path); err != nil {
			return nil, fmt.Errorf("create group %s: %w", name, err)
		}
	}
	return g, nil
}

// enableOOMKill makes a v1 memory group kill on OOM. A new group inherits
// oom_kill_disable from its parent, and with it set a task over the limit
// does not die but sleeps until memory frees up: the jail would hang
// instead of losing its biggest process. Only the group's processes are
// candidates either way; the limit never sends the host's OOM killer in.
func enableOOMKill(dir string) error {
	path := filepath.Join(dir, "memory.oom_control")
	for range 2 {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read oom control: %w", err)
		}
		disabled, err := parseKeyed(b, path, "oom_kill_disable")
		if err != nil {
			return err
		}
		if disabled == 0 {
			return nil
		}
		if err := writeFile(path, "0"); err != nil {
			return err
		}
	}
	return &WriteError{Path: path, Value: "0", Err: errors.New("oom_kill_disable is still set")}
}

// makeDir creates base/name and its missing parents. It returns the
// directories it created, parents first. The group itself must be new.
func makeDir(base, name string) (string, []string, error) {
	parts := strings.Split(name, "/")
	// A concurrent Create rolling back may remove a shared parent between
	// our mkdirs; starting over then recreates it.
	for attempt := 0; ; attempt++ {
		var made []string
		dir := base
		var err error
	loop:
		for i, part := range parts {
			dir = filepath.Join(dir, part)
			err = unix.Mkdir(dir, 0o755)
			switch {
			case err == nil:
				made = append(made, dir)
				continue
			case errors.Is(err, unix.EEXIST) && i < len(parts)-1:
				err = nil
				continue
			case errors.Is(err, unix.EEXIST):
				err = fmt.Errorf("make %s: %w", dir, ErrExists)
			default:
				err = &os.PathError{Op: "mkdir", Path: dir, Err: err}
			}
			break loop
		}
		if err == nil {
			return dir, made, nil
		}
		if errors.Is(err, unix.ENOENT) && attempt < 3 {
			if rerr := rollback(made); rerr != nil {
				return "", nil, errors.Join(err, rerr)
			}
			continue
		}
		return "", made, err
	}
}

// rollback removes directories Create made, children first. A parent that
// another group has meanwhile moved into is left alone.
func rollback(made []string) error {
	var errs []error
	for i := len(made) - 1; i >= 0; i-- {
		err := unix.Rmdir(made[i])
		if err == nil || errors.Is(err, unix.ENOENT) {
			continue
		}
		if i < len(made)-1 && (errors.Is(err, unix.EBUSY) || errors.Is(err, unix.ENOTEMPTY)) {
			continue
		}
		errs = append(errs, fmt.Errorf("roll back: %w", &os.PathError{Op: "rmdir", Path: made[i], Err: err}))
	}
	return errors.Join(errs...)
}

// enableV2 enables the controllers want down the path to name: cgroup v2
// hands a controller to a group only when every ancestor lists it in
// cgroup.subtree_control. The ancestors we write to hold no processes (the
// "no internal processes" rule would refuse otherwise); the root is exempt.
// Enabling is not undone on error: it is shared with sibling groups and
// costs nothing on its own.
func enableV2(base, name string, want []string) error {
	if len(want) == 0 {
		return nil
	}
	dir := base
	for _, part := range strings.Split(name, "/") {
		ctl, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		if err != nil {
			return fmt.Errorf("read controllers: %w", err)
		}
		sub, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
		if err != nil {
			return fmt.Errorf("read subtree controllers: %w", err)
		}
		add, err := toEnable(strings.Fields(string(ctl)), strings.Fields(string(sub)), want)
		if err != nil {
			return fmt.Errorf("in %s: %w", dir, err)
		}
		if len(add) > 0 {
			v := "+" + strings.Join(add, " +")
			if err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), v); err != nil {
				return err
			}
		}
		dir = filepath.Join(dir, part)
	}
	return nil
}

// Open returns the existing group name, as found in the hierarchies
// mounted now. A group present in only some of them (a crash during
// Create or Remove) is returned with those; one present in none is
// ErrNotFound.
func Open(name string) (*Group, error) {
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("open group: %w", err)
	}
	p, err := detect()
	if err != nil {
		return nil, fmt.Errorf("open group %s: %w", name, err)
	}
	g := &Group{name: name, ctl: map[string]ctlDir{}}
	if p.unified != nil {
		dir := filepath.Join(p.unified.mount, name)
		ok, err := isDir(dir)
		if err != nil {
			return nil, fmt.Errorf("open group %s: %w", name, err)
		}
		if ok {
			g.unified = dir
			g.dirs = append(g.dirs, dir)
			// What the group really got, not what the root offers: a
			// group made before a controller was enabled lacks its files.
			b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
			if err != nil {
				return nil, fmt.Errorf("open group %s: read controllers: %w", name, err)
			}
			for _, c := range strings.Fields(string(b)) {
				if slices.Contains(v2Wanted, c) {
					g.ctl[c] = ctlDir{path: dir, v2: true}
				}
			}
		}
	}
	for _, h := range p.v1 {
		dir := filepath.Join(h.mount, name)
		ok, err := isDir(dir)
		if err != nil {
			return nil, fmt.Errorf("open group %s: %w", name, err)
		}
		if !ok {
			continue
		}
		g.dirs = append(g.dirs, dir)
		for c, ch := range p.v1ctl {
			if ch == h {
				g.ctl[c] = ctlDir{path: dir}
			}
		}
	}
	if len(g.dirs) == 0 {
		return nil, fmt.Errorf("open group %s: %w", name, ErrNotFound)
	}
	return g, nil
}

func isDir(path string) (bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return fi.IsDir(), nil
}

// List returns the names of the groups directly under prefix (say
// "jailmgr" gives "jailmgr/<id>" for each session), in any hierarchy,
// sorted. A prefix that exists nowhere has no groups.
func List(prefix string) ([]string, error) {
	if err := checkName(prefix); err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	p, err := detect()
	if err != nil {
		return nil, fmt.Errorf("list groups under %s: %w", prefix, err)
	}
	var names []string
	for _, base := range p.bases() {
		entries, err := os.ReadDir(filepath.Join(base, prefix))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list groups under %s: %w", prefix, err)
		}
		for _, e := range entries {
			// Interface files are plain files; only directories are groups.
			if e.IsDir() {
				names = append(names, prefix+"/"+e.Name())
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// Add moves process pid (all its threads) into the group in every
// hierarchy. Children it forks afterwards are born in the group.
func (g *Group) Add(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("add process %d to %s: %w", pid, g.name, ErrInvalidPID)
	}
	for _, dir := range g.dirs {
		if err := writeFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("add process %d to %s: %w", pid, g.name, err)
		}
	}
	return nil
}

// Procs returns the processes in the group, in any hierarchy, sorted. A
// process counts even if it sits in the group in one hierarchy only (it
// forked while Add was moving its parent). A hierarchy the group has
// already been removed from holds none of its processes.
func (g *Group) Procs() ([]int, error) {
	var all []int
	for _, dir := range g.dirs {
		path := filepath.Join(dir, "cgroup.procs")
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list processes of %s: %w", g.name, err)
		}
		pids, err := parsePids(b, path)
		if err != nil {
			return nil, fmt.Errorf("list processes of %s: %w", g.name, err)
		}
		all = append(all, pids...)
	}
	slices.Sort(all)
	return slices.Compact(all), nil
}

// Usage reports the group's memory, tasks and CPU time.
func (g *Group) Usage() (Usage, error) {
	var u Usage
	if d, ok := g.ctl["memory"]; ok {
		file := "memory.usage_in_bytes"
		if d.v2 {
			file = "memory.current"
		}
		n, err := readInt(filepath.Join(d.path, file))
		if err != nil {
			return Usage{}, fmt.Errorf("read memory usage of %s: %w", g.name, err)
		}
		u.MemoryBytes = n
	}

	if d, ok := g.ctl["pids"]; ok {
		n, err := readInt(filepath.Join(d.path, "pids.current"))
		if err != nil {
			return Usage{}, fmt.Errorf("read task count of %s: %w", g.name, err)
		}
		u.Pids = int(n)
	} else {
		pids, err := g.Procs()
		if err != nil {
			return Usage{}, err
		}
		u.Pids = len(pids)
	}

	switch d, ok := g.ctl["cpuacct"]; {
	case ok:
		ns, err := readInt(filepath.Join(d.path, "cpuacct.usage"))
		if err != nil {
			return Usage{}, fmt.Errorf("read cpu time of %s: %w", g.name, err)
		}
		u.CPUTime = time.Duration(ns)
	case g.unified != "":
		// cpu.stat's usage_usec is kept by the v2 core, with or without
		// the cpu controller enabled.
		path := filepath.Join(g.unified, "cpu.stat")
		b, err := os.ReadFile(path)
		if err != nil {
			return Usage{}, fmt.Errorf("read cpu time of %s: %w", g.name, err)
		}
		us, err := parseKeyed(b, path, "usage_usec")
		if err != nil {
			return Usage{}, fmt.Errorf("read cpu time of %s: %w", g.name, err)
		}
		u.CPUTime = time.Duration(us) * time.Microsecond
	}
	return u, nil
}

// Remove deletes the group from every hierarchy. Its processes must be gone
// (Kill); a group already missing somewhere is fine.
func (g *Group) Remove() error {
	var errs []error
	for i := len(g.dirs) - 1; i >= 0; i-- {
		if err := rmdirWait(g.dirs[i]); err != nil {
			errs = append(errs, fmt.Errorf("remove group %s: %w", g.name, err))
		}
	}
	return errors.Join(errs...)
}

// rmdirWait removes a group directory. Right after Kill, rmdir can fail
// with EBUSY for a moment: killed tasks leave the group's task list only
// once they have finished exiting, not when SIGKILL is sent.
func rmdirWait(dir string) error {
	deadline := time.Now().Add(2 * time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return &os.PathError{Op: "rmdir", Path: dir, Err: err}
		}
		time.Sleep(delay)
	}
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseInt(b, path)
}

// writeFile writes value to an existing cgroup interface file in one
// write(2): the kernel parses each write on its own, so a value split over
// two writes would be two values.
func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return &WriteError{Path: path, Value: value, Err: unwrapPath(err)}
	}
	_, err = f.Write([]byte(value))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &WriteError{Path: path, Value: value, Err: unwrapPath(err)}
	}
	return nil
}

// unwrapPath drops the *PathError wrapper, whose path WriteError already has.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
