package conf

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"jailmgr/internal/names"
)

// Jail is one validated jail definition.
type Jail struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Image       string   `json:"image,omitempty"`     // an image reference, or
	Directory   string   `json:"directory,omitempty"` // a root directory
	Type        string   `json:"type"`                // "ephemeral" or "persistent"
	Users       []string `json:"users,omitempty"`
	Groups      []string `json:"groups,omitempty"`
	RootUsers   []string `json:"root_users,omitempty"`
	RootGroups  []string `json:"root_groups,omitempty"`
	Aliases     []string `json:"aliases,omitempty"`
	Mounts      []string `json:"mounts"`
	Binds       []Bind   `json:"binds,omitempty"`
	Hostname    string   `json:"hostname,omitempty"`
	Network     string   `json:"network"` // "host" or "none"
	// Memory is a limit in bytes; 0 is none.
	Memory int64 `json:"memory,omitempty"`
	// CPUs is a share of CPU time in cores; 0 is none.
	CPUs float64 `json:"cpus,omitempty"`
	// Pids caps the number of processes; 0 is none.
	Pids         int           `json:"pids,omitempty"`
	Seccomp      string        `json:"seccomp"` // "default", "none" or a profile's path
	Capabilities []string      `json:"capabilities"`
	Environment  string        `json:"environment"` // "clean" or "preserve"
	Shell        string        `json:"shell,omitempty"`
	IdleTimeout  time.Duration `json:"idle_timeout,omitempty"`
	MaxLifetime  time.Duration `json:"max_lifetime,omitempty"`

	// The settings below come from schroot chroot definitions (see
	// SchrootConfig.Jail); jailmgr's own ini has no keys for them.

	// Tarball is an archive unpacked into each session's root (schroot's
	// file chroots), TarballRoot the root's folder inside it.
	Tarball     string `json:"tarball,omitempty"`
	TarballRoot string `json:"tarball_root,omitempty"`
	// Repack packs the session's root back into Tarball when it ends.
	Repack bool `json:"repack,omitempty"`
	// CopyFiles are host files copied into each session's root at its start.
	CopyFiles []string `json:"copy_files,omitempty"`
	// Personality is an execution domain of Personalities for commands.
	Personality string `json:"personality,omitempty"`
	// OverlayDir holds the overlay upper dirs of ephemeral sessions
	// instead of the store.
	OverlayDir string `json:"overlay_dir,omitempty"`

	File string `json:"file,omitempty"` // where it is defined; "" for a bare image
	Line int    `json:"line,omitempty"`
}

// Bind is one bind mount of a host path into the jail.
type Bind struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// MountKinds are the standard mounts a jail can ask for.
var MountKinds = []string{"proc", "sys", "dev", "home", "tmp"}

// DefaultCapabilities is root's capability set inside a jail unless the
// jail says otherwise: Docker's default set without CAP_MKNOD, which Docker
// can grant only because its device cgroup stops the nodes being used; a
// jail has no such guard, and a block device node would open the host's
// disks.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// knownCapabilities are the names the capabilities key accepts.
var knownCapabilities = strings.Fields(`CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_FSETID
CAP_KILL CAP_SETGID CAP_SETUID CAP_SETPCAP CAP_LINUX_IMMUTABLE CAP_NET_BIND_SERVICE CAP_NET_BROADCAST
CAP_NET_ADMIN CAP_NET_RAW CAP_IPC_LOCK CAP_IPC_OWNER CAP_SYS_MODULE CAP_SYS_RAWIO CAP_SYS_CHROOT
CAP_SYS_PTRACE CAP_SYS_PACCT CAP_SYS_ADMIN CAP_SYS_BOOT CAP_SYS_NICE CAP_SYS_RESOURCE CAP_SYS_TIME
CAP_SYS_TTY_CONFIG CAP_MKNOD CAP_LEASE CAP_AUDIT_WRITE CAP_AUDIT_CONTROL CAP_SETFCAP CAP_MAC_OVERRIDE
CAP_MAC_ADMIN CAP_SYSLOG CAP_WAKE_ALARM CAP_BLOCK_SUSPEND CAP_AUDIT_READ CAP_PERFMON CAP_BPF
CAP_CHECKPOINT_RESTORE`)

// DefaultJail is the jail a bare image reference stands for.
func DefaultJail(image string) *Jail {
	return &Jail{
		Name: image, Image: image, Type: "ephemeral", Mounts: append([]string{}, MountKinds...),
		Network: "host", Seccomp: "default", Capabilities: append([]string{}, DefaultCapabilities...),
		Environment: "clean",
	}
}

// jailKeys are the keys a jail section may hold; bind may repeat.
var jailKeys = map[string]bool{
	"description": true, "image": true, "directory": true, "type": true, "users": true, "groups": true,
	"root-users": true, "root-groups": true, "aliases": true, "mounts": true, "bind": true, "hostname": true,
	"network": true, "memory": true, "cpus": true, "pids": true, "seccomp": true, "capabilities": true,
	"environment": true, "shell": true, "idle-timeout": true, "max-lifetime": true,
}

// Jails validates every jail section. imageExists, when set, checks that an
// image reference names an image. All problems are returned together.
func (c *Config) Jails(imageExists func(ref string) error) (map[string]*Jail, error) {
	out := map[string]*Jail{}
	var errs []error
	names := make([]string, 0, len(c.Sections))
	for n := range c.Sections {
		names = append(names, n)
	}
	// In the order they are written, so that the later of two clashing
	// definitions is the one blamed.
	fileIndex := map[string]int{}
	for i, f := range c.Files {
		fileIndex[f] = i
	}
	sort.Slice(names, func(a, b int) bool {
		sa, sb := c.Sections[names[a]], c.Sections[names[b]]
		if fileIndex[sa.File] != fileIndex[sb.File] {
			return fileIndex[sa.File] < fileIndex[sb.File]
		}
		return sa.Line < sb.Line
	})
	owner := map[string]*Jail{} // names and aliases → jail
	for _, n := range names {
		sec := c.Sections[n]
		j, jerrs := parseJail(sec, imageExists)
		errs = append(errs, jerrs...)
		if j == nil {
			continue
		}
		out[n] = j
		owner[n] = j
	}
	for _, n := range names {
		j := out[n]
		if j == nil {
			continue
		}
		for _, a := range j.Aliases {
			if o, ok := owner[a]; ok && o != j {
				errs = append(errs, &Error{File: j.File, Line: keyLine(c.Sections[n], "aliases"), Key: "aliases",
					What: fmt.Sprintf("%q is already the name or an alias of jail %q (%s:%d)", a, o.Name, o.File, o.Line)})
				continue
			}
			owner[a] = j
		}
	}
	if len(errs) > 0 {
		return out, errors.Join(errs...)
	}
	return out, nil
}

// Lookup finds a jail by name or alias.
func Lookup(jails map[string]*Jail, name string) (*Jail, bool) {
	if j, ok := jails[name]; ok {
		return j, true
	}
	for _, j := range jails {
		for _, a := range j.Aliases {
			if a == name {
				return j, true
			}
		}
	}
	return nil, false
}

func keyLine(s *Section, key string) int {
	for _, k := range s.Keys {
		if k.Name == key {
			return k.Line
		}
	}
	return s.Line
}

func parseJail(s *Section, imageExists func(string) error) (*Jail, []error) {
	j := DefaultJail("")
	j.Name, j.Image, j.File, j.Line = s.Name, "", s.File, s.Line
	var errs []error
	bad := func(k Key, format string, args ...any) {
		errs = append(errs, &Error{File: s.File, Line: k.Line, Key: k.Name, What: fmt.Sprintf(format, args...)})
	}
	if !validJailName(s.Name) {
		errs = append(errs, &Error{File: s.File, Line: s.Line, What: fmt.Sprintf("jail name %q: use letters, digits, '.', '-' and '_'", s.Name)})
	}
	seen := map[string]int{}
	typeSet := false
	for _, k := range s.Keys {
		if !jailKeys[k.Name] {
			bad(k, "unknown key (known: %s)", strings.Join(sortedKeys(jailKeys), ", "))
			continue
		}
		if prev, ok := seen[k.Name]; ok && k.Name != "bind" {
			bad(k, "set twice (first on line %d)", prev)
			continue
		}
		seen[k.Name] = k.Line
		v := k.Value
		switch k.Name {
		case "description":
			j.Description = v
		case "image":
			if v == "" {
				bad(k, "empty: name an image (see 'jailmgr image list')")
			} else if imageExists != nil {
				if err := imageExists(v); err != nil {
					bad(k, "%v", err)
				}
			}
			j.Image = v
		case "directory":
			if !filepath.IsAbs(v) {
				bad(k, "%q is not an absolute path", v)
			}
			j.Directory = filepath.Clean(v)
		case "type":
			if v != "ephemeral" && v != "persistent" {
				bad(k, "%q: use ephemeral (writes discarded at end) or persistent (writes kept)", v)
			}
			j.Type, typeSet = v, true
		case "users":
			j.Users = list(v)
		case "groups":
			j.Groups = list(v)
		case "root-users":
			j.RootUsers = list(v)
		case "root-groups":
			j.RootGroups = list(v)
		case "aliases":
			j.Aliases = list(v)
			for _, a := range j.Aliases {
				if !validJailName(a) {
					bad(k, "alias %q: use letters, digits, '.', '-' and '_'", a)
				}
			}
		case "mounts":
			j.Mounts = list(v)
			for _, m := range j.Mounts {
				if !slices.Contains(MountKinds, m) {
					bad(k, "%q is not one of %s", m, strings.Join(MountKinds, ", "))
				}
			}
		case "bind":
			b, err := parseBind(v)
			if err != nil {
				bad(k, "%v", err)
			}
			j.Binds = append(j.Binds, b)
		case "hostname":
			if !validHostname(v) {
				bad(k, "%q is not a valid host name", v)
			}
			j.Hostname = v
		case "network":
			if v != "host" && v != "none" {
				bad(k, "%q: use host (share the host's network) or none (loopback only)", v)
			}
			j.Network = v
		case "memory":
			n, err := ParseSize(v)
			if err != nil {
				bad(k, "%v", err)
			}
			j.Memory = n
		case "cpus":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f <= 0 || f > 4096 {
				bad(k, "%q: give a number of cores above 0, such as 1 or 0.5", v)
			}
			j.CPUs = f
		case "pids":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				bad(k, "%q: give a whole number of processes, at least 1", v)
			}
			j.Pids = n
		case "seccomp":
			if v != "default" && v != "none" && !filepath.IsAbs(v) {
				bad(k, "%q: use default, none, or the absolute path of a Docker-format JSON profile", v)
			}
			j.Seccomp = v
		case "capabilities":
			j.Capabilities = nil
			for _, c := range list(v) {
				name := strings.ToUpper(c)
				if !strings.HasPrefix(name, "CAP_") {
					name = "CAP_" + name
				}
				if !slices.Contains(knownCapabilities, name) {
					bad(k, "%q is not a capability", c)
				}
				j.Capabilities = append(j.Capabilities, name)
			}
		case "environment":
			if v != "clean" && v != "preserve" {
				bad(k, "%q: use clean or preserve", v)
			}
			j.Environment = v
		case "shell":
			if !filepath.IsAbs(v) {
				bad(k, "%q is not an absolute path", v)
			}
			j.Shell = v
		case "idle-timeout", "max-lifetime":
			d, err := parseDuration(v)
			if err != nil {
				bad(k, "%v", err)
			}
			if k.Name == "idle-timeout" {
				j.IdleTimeout = d
			} else {
				j.MaxLifetime = d
			}
		}
	}
	switch {
	case j.Image == "" && j.Directory == "":
		errs = append(errs, &Error{File: s.File, Line: s.Line, What: fmt.Sprintf("jail %q needs image = REF or directory = PATH", s.Name)})
	case j.Image != "" && j.Directory != "":
		errs = append(errs, &Error{File: s.File, Line: seen["directory"], Key: "directory", What: "set image or directory, not both"})
	}
	if j.Directory != "" && !typeSet {
		j.Type = "persistent" // a directory jail writes to its directory, as schroot's do
	}
	return j, errs
}

// ParseSize reads a byte size: 512M, 2G, 1048576, 1.5G.
func ParseSize(v string) (int64, error) {
	s := strings.TrimSpace(v)
	mult := int64(1)
	if n := len(s); n > 0 {
		switch strings.ToUpper(s[n-1:]) {
		case "K":
			mult, s = 1<<10, s[:n-1]
		case "M":
			mult, s = 1<<20, s[:n-1]
		case "G":
			mult, s = 1<<30, s[:n-1]
		case "T":
			mult, s = 1<<40, s[:n-1]
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || f*float64(mult) > 1<<50 {
		return 0, fmt.Errorf("%q is not a size: give bytes or a number with K, M, G or T (such as 512M)", v)
	}
	n := int64(f * float64(mult))
	if n < 1<<20 {
		return 0, fmt.Errorf("%q is below the smallest limit of 1M", v)
	}
	return n, nil
}

func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a duration: give seconds or a value like 30m or 2h", v)
	}
	return d, nil
}

func parseBind(v string) (Bind, error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 || (len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw") {
		return Bind{}, fmt.Errorf("%q: write SOURCE:TARGET or SOURCE:TARGET:ro", v)
	}
	b := Bind{Source: filepath.Clean(parts[0]), Target: filepath.Clean(parts[1]), ReadOnly: len(parts) == 3 && parts[2] == "ro"}
	if !filepath.IsAbs(parts[0]) || !filepath.IsAbs(parts[1]) {
		return b, fmt.Errorf("%q: both paths must be absolute", v)
	}
	if b.Target == "/" {
		return b, fmt.Errorf("%q: cannot bind over the jail's root", v)
	}
	return b, nil
}

func list(v string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		out = append(out, f)
	}
	return out
}

func validJailName(n string) bool { return names.Valid(n, 128) }

func validHostname(h string) bool {
	if h == "" || len(h) > 64 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
