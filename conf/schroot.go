package conf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
)

// This file reads schroot's configuration — /etc/schroot/schroot.conf and
// the files of /etc/schroot/chroot.d — as schroot 1.6 does: the same key
// file syntax (no trimming, '#' comments, comma lists), the same keys per
// chroot type, the same defaults, warnings for obsolete and unknown keys,
// and errors where schroot refuses a file. Chroots of the types jailmgr
// can run (directory, plain, file) are kept; the others are skipped with
// a warning.

// SchrootDir is where schroot keeps its configuration: schroot.conf, the
// chroot.d folder and the setup profiles.
const SchrootDir = "/etc/schroot"

// DefaultEnvironmentFilter is schroot 1.6's default environment-filter:
// variables that would let a caller steer programs in the chroot.
const DefaultEnvironmentFilter = `^(BASH_ENV|CDPATH|ENV|HOSTALIASES|IFS|KRB5_CONFIG|KRBCONFDIR|KRBTKFILE|KRB_CONF|LD_.*|LOCALDOMAIN|NLSPATH|PATH_LOCALE|RES_OPTIONS|TERMINFO|TERMINFO_DIRS|TERMPATH)$`

// Where schroot puts union layers unless a chroot says otherwise; shown by
// --info as schroot shows them.
const (
	DefaultUnionOverlayDirectory  = "/var/lib/schroot/union/overlay"
	DefaultUnionUnderlayDirectory = "/var/lib/schroot/union/underlay"
)

// Chroot is one schroot chroot: a definition from the configuration, the
// source chroot schroot derives from a source-clonable one, or a session
// cloned from either. Lists keep schroot's parsing: split on commas,
// nothing trimmed.
type Chroot struct {
	Name        string
	Type        string // "directory", "plain" or "file"
	Description string
	Directory   string // directory and plain chroots
	Tarball     string // file chroots: the file= archive
	Location    string // file chroots: the root's folder inside the archive

	Users, Groups, RootUsers, RootGroups []string
	Aliases                              []string

	PreserveEnvironment bool
	Shell               string
	EnvironmentFilter   string
	Profile             string
	ScriptConfig        string
	CommandPrefix       []string
	Verbosity           string // quiet, normal or verbose
	Personality         string // a name of Personalities, or "undefined"

	// UserData holds setup.* and every other namespaced key.
	UserData                               map[string]string
	UserModifiableKeys, RootModifiableKeys []string

	UnionType              string // "none", or overlay, overlayfs, aufs, unionfs
	UnionMountOptions      string
	UnionOverlayDirectory  string
	UnionUnderlayDirectory string

	SourceClone                                                  bool
	SourceUsers, SourceGroups, SourceRootUsers, SourceRootGroups []string

	// Source marks the source chroot derived from a source-clonable one:
	// its sessions write to the chroot itself.
	Source bool
	// FileRepack makes a file chroot's sessions pack their root back into
	// the archive at the end (source chroots of file chroots).
	FileRepack bool
	// Session is set on a session cloned from a chroot.
	Session *ChrootSession

	// Jail is set when the chroot stands for one of jailmgr's own jails.
	Jail *Jail

	File string // where it is defined
	Line int
}

// ChrootSession is what a session adds to the chroot it was begun from.
type ChrootSession struct {
	OriginalName  string // the chroot's name
	SelectedName  string // the name or alias it was selected by
	MountLocation string // where its root is mounted on the host
}

// SessionClonable reports whether beginning a session clones the chroot
// (every type but plain, and never a session).
func (c *Chroot) SessionClonable() bool { return c.Type != "plain" && c.Session == nil }

// UnionFacet reports whether the chroot has schroot's union settings:
// directory chroots that are not source chroots.
func (c *Chroot) UnionFacet() bool { return c.Type == "directory" && !c.Source }

// UnionConfigured reports whether sessions are a union over the chroot.
func (c *Chroot) UnionConfigured() bool { return c.UnionFacet() && c.UnionType != "none" }

// SourceClonable reports whether the chroot has a source chroot's
// settings: file chroots and union directory chroots, never their source
// chroots or sessions.
func (c *Chroot) SourceClonable() bool {
	if c.Source || c.Session != nil {
		return false
	}
	return c.Type == "file" || c.UnionConfigured()
}

// RunSetupScripts is schroot's "Run Setup Scripts": false for plain chroots.
func (c *Chroot) RunSetupScripts() bool { return c.Type != "plain" }

// SessionPurged reports whether a session's changes are discarded at its
// end: file and union sessions.
func (c *Chroot) SessionPurged() bool {
	return c.Session != nil && (c.Type == "file" || c.UnionConfigured())
}

// Path is where the chroot's root is on the host, as --location prints it:
// a session's mount location (plus a file chroot's location), a plain
// chroot's directory, else nothing.
func (c *Chroot) Path() string {
	switch c.Type {
	case "plain":
		return c.Directory
	case "file":
		if c.Session == nil {
			return c.Location
		}
		return c.Session.MountLocation + c.Location
	}
	if c.Session == nil {
		return ""
	}
	return c.Session.MountLocation
}

func (c *Chroot) clone() *Chroot {
	n := *c
	for _, l := range []*[]string{&n.Users, &n.Groups, &n.RootUsers, &n.RootGroups, &n.Aliases, &n.CommandPrefix,
		&n.UserModifiableKeys, &n.RootModifiableKeys, &n.SourceUsers, &n.SourceGroups, &n.SourceRootUsers, &n.SourceRootGroups} {
		*l = slices.Clone(*l)
	}
	n.UserData = map[string]string{}
	for k, v := range c.UserData {
		n.UserData[k] = v
	}
	if c.Session != nil {
		s := *c.Session
		n.Session = &s
	}
	return &n
}

// SourceChroot is the source chroot schroot derives from a source-clonable
// chroot: the same root, written to directly, open to the source-* users.
func (c *Chroot) SourceChroot() *Chroot {
	s := c.clone()
	s.Description += " (source chroot)"
	s.Users, s.Groups = slices.Clone(c.SourceUsers), slices.Clone(c.SourceGroups)
	s.RootUsers, s.RootGroups = slices.Clone(c.SourceRootUsers), slices.Clone(c.SourceRootGroups)
	s.Source = true
	if s.Type == "file" {
		s.FileRepack = true
	}
	return s
}

// CloneSession is the session schroot makes when a chroot, selected by
// alias, is begun by user: owned by that user alone (as a root user when
// root is set), with no aliases, and its union layers in folders named
// after the session.
func (c *Chroot) CloneSession(id, alias, user string, root bool, mountLocation string) *Chroot {
	s := c.clone()
	_, short := SplitNamespace(alias)
	s.Session = &ChrootSession{OriginalName: c.Name, SelectedName: short, MountLocation: mountLocation}
	s.Name = id
	s.Description += " (session chroot)"
	var owner []string
	if user != "" {
		owner = []string{user}
	}
	if root {
		s.Users, s.RootUsers = nil, owner
	} else {
		s.Users, s.RootUsers = owner, nil
	}
	s.Groups, s.RootGroups, s.Aliases = nil, nil, nil
	if s.UnionConfigured() {
		s.UnionOverlayDirectory += "/" + id
		s.UnionUnderlayDirectory += "/" + id
	}
	return s
}

// SplitNamespace splits "ns:name" into its namespace ("" if none) and name.
func SplitNamespace(name string) (ns, short string) {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return name[:i], name[i+1:]
	}
	return "", name
}

// SchrootError is a problem in schroot's configuration, worded as schroot
// words it, with the file and line it is on.
type SchrootError struct {
	File   string
	Line   int
	Group  string // the chroot's [name]
	Key    string
	What   string
	Reason string // schroot's explanation, printed on "I:" lines
}

func (e *SchrootError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Group != "" {
		b.WriteString("[" + e.Group + "]")
		if e.Key != "" {
			b.WriteString(" " + e.Key)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.What)
	return b.String()
}

func (e *SchrootError) Unwrap() error { return ErrInvalid }

// SchrootConfig is what schroot's configuration defines.
type SchrootConfig struct {
	// Dir is the configuration folder (SchrootDir, or another for tests).
	Dir string
	// Files lists the files read, in order.
	Files []string
	// Chroots holds every chroot jailmgr can run, by name.
	Chroots map[string]*Chroot
	// Warnings are what schroot would warn about: obsolete, deprecated and
	// unknown keys, values it cannot parse, aliases taken twice, and
	// chroot types jailmgr does not run.
	Warnings []*SchrootError

	// aliases maps "namespace:alias" to "namespace:name", as schroot's
	// chroot_config does.
	aliases map[string]string
	// namespaces holds the chroots of each namespace by name.
	namespaces map[string]map[string]*Chroot
}

// unsupportedTypes are schroot chroot types jailmgr does not run; they are
// skipped with a warning rather than refused, so that a host's existing
// schroot configuration does not stop jailmgr.
var unsupportedTypes = []string{"block-device", "btrfs-snapshot", "custom", "loopback", "lvm-snapshot", "zfs-snapshot"}

// LoadSchroot reads dir/schroot.conf (which may be absent) and the files of
// dir/chroot.d whose names schroot accepts. Errors are what schroot refuses
// to start with; they are returned together.
func LoadSchroot(dir string) (*SchrootConfig, error) {
	c := NewSchrootConfig(dir)
	var files []string
	main := filepath.Join(dir, "schroot.conf")
	if _, err := os.Stat(main); err == nil {
		files = append(files, main)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read schroot config %s: %w", main, err)
	}
	ents, err := os.ReadDir(filepath.Join(dir, "chroot.d"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read schroot config: %w", err)
	}
	for _, e := range ents {
		// Editor backups and dpkg leftovers are skipped, as schroot does.
		if ValidSchrootName(e.Name()) {
			files = append(files, filepath.Join(dir, "chroot.d", e.Name()))
		}
	}
	var errs []error
	for _, f := range files {
		data, err := readSchrootFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.Files = append(c.Files, f)
		errs = append(errs, c.parse(f, data)...)
	}
	return c, errors.Join(errs...)
}

// NewSchrootConfig is an empty configuration of dir.
func NewSchrootConfig(dir string) *SchrootConfig {
	return &SchrootConfig{Dir: dir, Chroots: map[string]*Chroot{}, aliases: map[string]string{},
		namespaces: map[string]map[string]*Chroot{"chroot": {}, "source": {}, "session": {}}}
}

// readSchrootFile reads one file with schroot's checks: a regular file,
// and when jailmgr runs as root, owned by root and not writable by others —
// whoever can write it decides what root runs.
func readSchrootFile(file string) ([]byte, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("read schroot config %s: %w", file, err)
	}
	if !st.Mode().IsRegular() {
		return nil, &SchrootError{File: file, What: "File is not a regular file"}
	}
	if os.Geteuid() == 0 {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 {
			return nil, &SchrootError{File: file, What: "File is not owned by user root"}
		}
		if st.Mode().Perm()&0o002 != 0 {
			return nil, &SchrootError{File: file, What: "File has write permissions for others"}
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read schroot config %s: %w", file, err)
	}
	return data, nil
}

// ValidSchrootName is schroot's rule for chroot, alias and session names
// and for the file names of chroot.d: no ':', '/' or ',', no leading '.',
// not an editor backup or a dpkg leftover.
func ValidSchrootName(name string) bool {
	if name == "" || name[0] == '.' || strings.ContainsAny(name, ":/,") || strings.HasSuffix(name, "~") {
		return false
	}
	for _, s := range []string{"dpkg-old", "dpkg-dist", "dpkg-new", "dpkg-tmp"} {
		if strings.HasSuffix(name, s) {
			return false
		}
	}
	return true
}

// parse reads one file's chroots into the configuration. A problem schroot
// treats as fatal stops the file, as it stops schroot.
func (c *SchrootConfig) parse(file string, data []byte) []error {
	groups, err := parseKeyfile(file, data)
	if err != nil {
		return []error{err}
	}
	for _, g := range groups {
		ch, warns, err := buildChroot(file, g)
		c.Warnings = append(c.Warnings, warns...)
		if err != nil {
			return []error{err}
		}
		if ch == nil {
			continue // a type jailmgr does not run
		}
		if err := c.Add("chroot", ch); err != nil {
			return []error{err}
		}
		c.Chroots[ch.Name] = ch
		if ch.SourceClonable() && ch.SourceClone {
			if err := c.Add("source", ch.SourceChroot()); err != nil {
				return []error{err}
			}
		}
	}
	return nil
}

// Add puts a chroot into a namespace ("chroot", "source" or "session")
// with its aliases, as schroot's chroot_config does: a name taken twice is
// an error; an alias taken twice a warning, and the alias is not added.
// Plain chroots also answer to session:NAME, and the aliases of source
// chroots to chroot:ALIAS-source, for older clients.
func (c *SchrootConfig) Add(ns string, ch *Chroot) error {
	chroots := c.namespaces[ns]
	if chroots == nil {
		return fmt.Errorf("add chroot %s: no namespace %q", ch.Name, ns)
	}
	full := ns + ":" + ch.Name
	if _, ok := chroots[ch.Name]; ok || c.aliases[full] != "" {
		return &SchrootError{File: ch.File, Line: ch.Line, Group: ch.Name,
			What: fmt.Sprintf("A chroot or alias ‘%s’ already exists with this name", full), Reason: "Duplicate names are not allowed"}
	}
	chroots[ch.Name] = ch
	c.aliases[full] = full
	if ns == "chroot" && ch.Type == "plain" {
		if _, ok := c.aliases["session:"+ch.Name]; !ok {
			c.aliases["session:"+ch.Name] = full
		}
	}
	for _, a := range ch.Aliases {
		key := ns + ":" + a
		if prev, ok := c.aliases[key]; ok {
			if prev != full {
				c.Warnings = append(c.Warnings, &SchrootError{File: ch.File, Line: ch.Line, Group: ch.Name, Key: "aliases",
					What: fmt.Sprintf("Alias ‘%s’ already associated with ‘%s’ chroot", a, prev)})
			}
		} else {
			c.aliases[key] = full
		}
		if ns == "source" {
			if _, ok := c.aliases["chroot:"+a+"-source"]; !ok {
				c.aliases["chroot:"+a+"-source"] = full
			}
		}
	}
	return nil
}

// Find looks a name up as schroot does: "ns:name" in its namespace, a bare
// name in the hinted one ("chroot" when hint is ""), by alias first, then
// by name. It returns the chroot's namespace too.
func (c *SchrootConfig) Find(hint, name string) (string, *Chroot, bool) {
	ns, short := SplitNamespace(name)
	if ns == "" {
		ns = hint
	}
	if ns == "" {
		ns = "chroot"
	}
	if target, ok := c.aliases[ns+":"+short]; ok {
		tns, tname := SplitNamespace(target)
		if ch, ok := c.namespaces[tns][tname]; ok {
			return tns, ch, true
		}
	}
	if ch, ok := c.namespaces[ns][short]; ok {
		return ns, ch, true
	}
	return "", nil, false
}

// Names lists "ns:name" for every chroot of a namespace, sorted.
func (c *SchrootConfig) Names(ns string) []string {
	var out []string
	for n := range c.namespaces[ns] {
		out = append(out, ns+":"+n)
	}
	sort.Strings(out)
	return out
}

// AliasNames lists "ns:alias" for every name and alias of a namespace,
// sorted.
func (c *SchrootConfig) AliasNames(ns string) []string {
	var out []string
	for a := range c.aliases {
		if strings.HasPrefix(a, ns+":") {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

// Personalities are the execution domains schroot's personality key
// names, with the values personality(2) takes (linux/personality.h).
var Personalities = map[string]uint32{
	"linux": 0x0000000, "linux_32bit": 0x0800000, "svr4": 0x4100001, "scorvr3": 0x7000003,
	"osr5": 0x6000003, "wysev386": 0x5000004, "iscr4": 0x4000005, "bsd": 0x0000006,
	"sunos": 0x4000006, "xenix": 0x5000007, "linux32": 0x0000008, "irix32": 0x4000009,
	"irixn32": 0x400000a, "irix64": 0x400000b, "riscos": 0x000000c, "solaris": 0x400000d,
	"uw7": 0x410000e, "hpux": 0x0000010, "osf4": 0x000000f,
}

// SetProfile sets the profile and the setup.* keys it implies.
func (c *Chroot) SetProfile(p string) {
	c.Profile = p
	for _, k := range []string{"config", "copyfiles", "nssdatabases", "fstab"} {
		c.UserData["setup."+k] = p + "/" + k
	}
}
