package cgroup

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
)

// hierarchy is one mounted cgroup hierarchy.
type hierarchy struct {
	mount        string // where it is mounted, unescaped
	major, minor uint32 // device of the mount, to tell whether the path still leads to it
	unified      bool   // cgroup2
	// controllers a v1 hierarchy is bound to, from its super options. For
	// the unified hierarchy the mount says nothing: what it offers is in the
	// root's cgroup.controllers, read separately.
	controllers []string
}

// v2Wanted are the controllers a group uses from the unified hierarchy.
// cgroup v2 folds cpuacct into cpu (cpu.stat) and has the freezer in its
// core (cgroup.freeze), so neither appears here.
var v2Wanted = []string{"memory", "cpu", "pids"}

// v1Wanted are the controllers a group uses from v1 hierarchies: cpuacct
// for CPU time, freezer to stop forks while Kill signals.
var v1Wanted = []string{"memory", "cpu", "cpuacct", "pids", "freezer"}

// v1Options are super options of a v1 cgroup mount that name no controller.
var v1Options = []string{"rw", "ro", "none", "all", "noprefix", "clone_children", "xattr", "cpuset_v2_mode", "favordynmods", "nofavordynmods"}

// parseMountinfo returns the cgroup hierarchies in a mountinfo file (see
// proc(5)), in file order. Named v1 hierarchies without controllers (such
// as name=systemd) are left out: their owner's, and of no use to a group.
func parseMountinfo(r io.Reader, input string) ([]hierarchy, error) {
	var hs []hierarchy
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		f := strings.Fields(text)
		// id parent major:minor root mountpoint options [optional...] - fstype source super
		sep := slices.Index(f, "-")
		if sep < 0 {
			return nil, &ParseError{Input: input, Line: line, Field: "separator", Err: fmt.Errorf("%w: no \" - \" separator", ErrMalformed)}
		}
		if sep < 6 {
			return nil, &ParseError{Input: input, Line: line, Field: "mount point", Err: fmt.Errorf("%w: %d fields before the separator, want at least 6", ErrMalformed, sep)}
		}
		if len(f) < sep+4 {
			return nil, &ParseError{Input: input, Line: line, Field: "super options", Err: fmt.Errorf("%w: %d fields after the separator, want 3", ErrMalformed, len(f)-sep-1)}
		}
		fstype := f[sep+1]
		if fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		var major, minor uint32
		if _, err := fmt.Sscanf(f[2], "%d:%d", &major, &minor); err != nil {
			return nil, &ParseError{Input: input, Line: line, Field: "major:minor", Err: fmt.Errorf("%w: %q", ErrMalformed, f[2])}
		}
		point, err := unescapeMount(f[4])
		if err != nil {
			return nil, &ParseError{Input: input, Line: line, Field: "mount point", Err: err}
		}
		h := hierarchy{mount: point, major: major, minor: minor, unified: fstype == "cgroup2"}
		if !h.unified {
			for _, o := range strings.Split(f[sep+3], ",") {
				if o != "" && !strings.Contains(o, "=") && !slices.Contains(v1Options, o) {
					h.controllers = append(h.controllers, o)
				}
			}
			slices.Sort(h.controllers)
			if len(h.controllers) == 0 {
				continue
			}
		}
		hs = append(hs, h)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", input, err)
	}
	return hs, nil
}

// unescapeMount undoes the octal escapes (\040 for a space, \134 for a
// backslash, ...) the kernel puts in mountinfo paths.
func unescapeMount(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("%w: truncated escape in %q", ErrMalformed, s)
		}
		v := 0
		for _, c := range s[i+1 : i+4] {
			if c < '0' || c > '7' {
				return "", fmt.Errorf("%w: bad escape in %q", ErrMalformed, s)
			}
			v = v*8 + int(c-'0')
		}
		if v > 0xff {
			return "", fmt.Errorf("%w: bad escape in %q", ErrMalformed, s)
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}

// plan says which hierarchy serves each controller a group uses.
type plan struct {
	kind    string     // "v2", "v1" or "hybrid"
	unified *hierarchy // nil when no cgroup2 hierarchy is mounted
	avail   []string   // controllers the unified hierarchy's root offers
	v2      []string   // controllers used from the unified hierarchy
	v1      []*hierarchy
	v1ctl   map[string]*hierarchy // controller → v1 hierarchy serving it
}

// makePlan picks, for each controller, the unified hierarchy when its root
// offers it (avail, from the root's cgroup.controllers) and its v1 hierarchy
// otherwise. Where a hierarchy is mounted twice (a bind mount, a
// container's view), the first mount serves. The kernel binds a controller to one hierarchy at a time, so
// a controller in use by v1 is never in avail; preferring v2 only matters
// for inconsistent input.
func makePlan(hs []hierarchy, avail []string) (*plan, error) {
	p := &plan{v1ctl: map[string]*hierarchy{}}
	hasV1 := false
	for i := range hs {
		h := &hs[i]
		if h.unified {
			if p.unified == nil {
				p.unified = h
			}
			continue
		}
		hasV1 = true
	}
	switch {
	case p.unified != nil && hasV1:
		p.kind = "hybrid"
	case p.unified != nil:
		p.kind = "v2"
	case hasV1:
		p.kind = "v1"
	default:
		return nil, ErrNoCgroups
	}
	if p.unified != nil {
		p.avail = slices.Clone(avail)
		for _, c := range v2Wanted {
			if slices.Contains(avail, c) {
				p.v2 = append(p.v2, c)
			}
		}
	}
	for _, c := range v1Wanted {
		if slices.Contains(p.v2, c) || (c == "cpuacct" && slices.Contains(p.v2, "cpu")) {
			continue
		}
		for i := range hs {
			h := &hs[i]
			if h.unified || !slices.Contains(h.controllers, c) {
				continue
			}
			p.v1ctl[c] = h
			if !slices.Contains(p.v1, h) {
				p.v1 = append(p.v1, h)
			}
			break
		}
	}
	return p, nil
}

// has reports whether some hierarchy in the plan serves controller c.
func (p *plan) has(c string) bool {
	return slices.Contains(p.v2, c) || p.v1ctl[c] != nil
}

// bases are the roots of the hierarchies a group lives in, unified first.
func (p *plan) bases() []string {
	var b []string
	if p.unified != nil {
		b = append(b, p.unified.mount)
	}
	for _, h := range p.v1 {
		b = append(b, h.mount)
	}
	return b
}

// describe says which controllers live where, for `jailmgr doctor`.
func (p *plan) describe() string {
	var parts []string
	if p.unified != nil {
		avail := strings.Join(p.avail, " ")
		if avail == "" {
			avail = "none"
		}
		parts = append(parts, fmt.Sprintf("processes: v2 at %s (offers: %s)", p.unified.mount, avail))
	}
	for _, c := range v1Wanted {
		switch {
		case slices.Contains(p.v2, c):
			parts = append(parts, fmt.Sprintf("%s: v2 at %s", c, p.unified.mount))
		case p.v1ctl[c] != nil:
			parts = append(parts, fmt.Sprintf("%s: v1 at %s", c, p.v1ctl[c].mount))
		case c == "cpuacct" && slices.Contains(p.v2, "cpu"), c == "freezer" && p.unified != nil:
			// Part of the v2 core (cpu.stat, cgroup.freeze).
		default:
			parts = append(parts, c+": none")
		}
	}
	return p.kind + ": " + strings.Join(parts, "; ")
}

// toEnable returns the controllers of want that a v2 cgroup must add to its
// cgroup.subtree_control for its children to get them: those it offers
// (its cgroup.controllers) and has not enabled yet.
func toEnable(controllers, subtree, want []string) ([]string, error) {
	var add []string
	for _, c := range want {
		if slices.Contains(subtree, c) {
			continue
		}
		if !slices.Contains(controllers, c) {
			return nil, fmt.Errorf("enable %s: %w", c, ErrUnsupported)
		}
		add = append(add, c)
	}
	return add, nil
}

// checkName refuses group names that could leave the hierarchy or collide
// with the kernel's files: absolute, "..", ".", empty components, and
// characters beyond [A-Za-z0-9._@:+-]. A component may not start with "."
// or look like an interface file ("cgroup.procs", "memory.max").
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidName)
	}
	if strings.HasPrefix(name, "/") {
		return fmt.Errorf("%w: %q is absolute", ErrInvalidName, name)
	}
	for _, c := range strings.Split(name, "/") {
		switch {
		case c == "":
			return fmt.Errorf("%w: %q has an empty component", ErrInvalidName, name)
		case c == "..":
			return fmt.Errorf("%w: %q climbs out with '..'", ErrInvalidName, name)
		case strings.HasPrefix(c, "."):
			return fmt.Errorf("%w: %q has a component starting with '.'", ErrInvalidName, name)
		case len(c) > 255:
			return fmt.Errorf("%w: %q has a component longer than 255 bytes", ErrInvalidName, name)
		case strings.Contains(c, ".") && isInterfaceName(c):
			return fmt.Errorf("%w: %q has a component named like a cgroup file", ErrInvalidName, name)
		}
		for _, r := range c {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@:+-", r)
			if !ok {
				return fmt.Errorf("%w: %q has character %q", ErrInvalidName, name, r)
			}
		}
	}
	return nil
}

// isInterfaceName reports whether c looks like "<controller>.<file>", the
// pattern of the kernel's interface files; mkdir would fail on an existing
// one and succeed on a future one.
func isInterfaceName(c string) bool {
	prefix, _, _ := strings.Cut(c, ".")
	return slices.Contains([]string{"cgroup", "memory", "cpu", "cpuacct", "cpuset", "pids", "io", "blkio",
		"freezer", "devices", "hugetlb", "rdma", "misc", "net_cls", "net_prio", "perf_event", "notify_on_release",
		"release_agent", "tasks"}, prefix)
}
