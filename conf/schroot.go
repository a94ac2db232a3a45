package conf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
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

// keyfileGroup is one [group] of a key file with its keys in order.
type keyfileGroup struct {
	name string
	line int
	keys []Key
}

func (g *keyfileGroup) get(key string) (Key, bool) {
	for _, k := range g.keys {
		if k.Name == key {
			return k, true
		}
	}
	return Key{}, false
}

// parseKeyfile reads schroot's key file syntax: lines are taken as they
// are (no trimming), '#' starts a comment line, "[name]" a group, and
// anything else must be key=value inside a group.
func parseKeyfile(file string, data []byte) ([]*keyfileGroup, error) {
	var groups []*keyfileGroup
	seen := map[string]bool{}
	var cur *keyfileGroup
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		switch {
		case text == "" || text[0] == '#':
		case text[0] == '[':
			first, last := strings.IndexByte(text, ']'), strings.LastIndexByte(text, ']')
			if first < 0 || first != last || first == 1 {
				return nil, &SchrootError{File: file, Line: line, What: fmt.Sprintf("Invalid group: “%s”", text)}
			}
			name := text[1:first]
			if seen[name] {
				return nil, &SchrootError{File: file, Line: line, What: fmt.Sprintf("Duplicate group ‘%s’", name)}
			}
			seen[name] = true
			cur = &keyfileGroup{name: name, line: line}
			groups = append(groups, cur)
		default:
			k, v, ok := strings.Cut(text, "=")
			switch {
			case !ok:
				return nil, &SchrootError{File: file, Line: line, What: fmt.Sprintf("Invalid line: “%s”", text)}
			case k == "":
				return nil, &SchrootError{File: file, Line: line, What: fmt.Sprintf("No key specified: “%s”", text)}
			case cur == nil:
				return nil, &SchrootError{File: file, Line: line, What: fmt.Sprintf("No group specified: “%s”", text)}
			}
			if _, dup := cur.get(k); dup {
				return nil, &SchrootError{File: file, Line: line, Group: cur.name, What: fmt.Sprintf("Duplicate key ‘%s’", k)}
			}
			cur.keys = append(cur.keys, Key{Name: k, Value: v, Line: line})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read schroot config %s: %w", file, err)
	}
	return groups, nil
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

// personalityNames is schroot's list of valid personalities.
func personalityNames() string {
	names := []string{"undefined"}
	for n := range Personalities {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// userDataKey is schroot's rule for keys of its own that a chroot may
// carry (setup.fstab, build.jobs): namespaced, and not one of the names its
// setup scripts reserve.
var (
	userDataKey      = regexp.MustCompile(`^([a-z][a-z0-9]*\.)+[a-z][a-z0-9-]*$`)
	reservedDataKeys = regexp.MustCompile(`^(((auth|chroot|host|libexec|mount|session|status|sysconf)\..*)|setup.data.dir)$`)
)

// splitList is schroot's list parsing: split on commas, empty items
// dropped, nothing trimmed.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func parseBool(v string) (bool, bool) {
	switch v {
	case "true", "yes", "1":
		return true, true
	case "false", "no", "0":
		return false, true
	}
	return false, false
}

// SetProfile sets the profile and the setup.* keys it implies.
func (c *Chroot) SetProfile(p string) {
	c.Profile = p
	for _, k := range []string{"config", "copyfiles", "nssdatabases", "fstab"} {
		c.UserData["setup."+k] = p + "/" + k
	}
}

// buildChroot makes a chroot of a group, key by key as schroot 1.6 reads
// them. It returns nil (with a warning) for a type jailmgr does not run.
func buildChroot(file string, g *keyfileGroup) (*Chroot, []*SchrootError, error) {
	var warns []*SchrootError
	used := map[string]bool{"type": true}
	fail := func(k Key, what, reason string) error {
		return &SchrootError{File: file, Line: k.Line, Group: g.name, Key: k.Name, What: what, Reason: reason}
	}
	groupFail := func(what, reason string) error {
		return &SchrootError{File: file, Line: g.line, Group: g.name, What: what, Reason: reason}
	}
	typ := "plain"
	if k, ok := g.get("type"); ok {
		typ = k.Value
	}
	switch {
	case typ == "directory" || typ == "plain" || typ == "file":
	case slices.Contains(unsupportedTypes, typ):
		return nil, []*SchrootError{{File: file, Line: g.line, Group: g.name,
			What:   fmt.Sprintf("chroot type ‘%s’ is not supported by jailmgr; chroot skipped", typ),
			Reason: "jailmgr runs directory, plain and file chroots"}}, nil
	default:
		return nil, nil, &SchrootError{File: file, Line: g.line, What: fmt.Sprintf("Unknown chroot type ‘%s’", typ)}
	}
	if strings.Contains(g.name, ":") {
		return nil, nil, groupFail(fmt.Sprintf("%s: Invalid name", g.name), "Namespace separator ‘:’ may not be used in a chroot name")
	}
	if !ValidSchrootName(g.name) {
		return nil, nil, groupFail(fmt.Sprintf("%s: Invalid name", g.name), "Naming restrictions are documented in schroot.conf(5)")
	}
	c := &Chroot{Name: g.name, Type: typ, File: file, Line: g.line, EnvironmentFilter: DefaultEnvironmentFilter,
		Verbosity: "normal", Personality: "undefined", UserData: map[string]string{}, SourceClone: true}
	c.SetProfile("default")
	if typ == "directory" {
		c.UnionType = "none"
		c.UnionOverlayDirectory, c.UnionUnderlayDirectory = DefaultUnionOverlayDirectory, DefaultUnionUnderlayDirectory
	}
	get := func(name string) (Key, bool) {
		used[name] = true
		return g.get(name)
	}
	obsolete := func(name string) {
		if k, ok := get(name); ok {
			warns = append(warns, &SchrootError{File: file, Line: k.Line, Group: g.name,
				What: fmt.Sprintf("Obsolete key ‘%s’ used", name), Reason: "This option has been removed, and no longer has any effect"})
		}
	}
	disallowed := func(name string) error {
		if k, ok := get(name); ok {
			return &SchrootError{File: file, Line: k.Line, Group: g.name, What: fmt.Sprintf("Disallowed key ‘%s’ used", name)}
		}
		return nil
	}
	str := func(name string, dst *string) {
		if k, ok := get(name); ok {
			*dst = k.Value
		}
	}
	strList := func(name string, dst *[]string) {
		if k, ok := get(name); ok {
			*dst = splitList(k.Value)
		}
	}
	boolean := func(name string, dst *bool) {
		if k, ok := get(name); ok {
			if b, ok := parseBool(k.Value); ok {
				*dst = b
			} else {
				warns = append(warns, &SchrootError{File: file, Line: k.Line, Group: g.name, Key: name,
					What: fmt.Sprintf("Could not parse value ‘%s’", k.Value)})
			}
		}
	}
	absolute := func(name, what string, dst *string) error {
		if k, ok := get(name); ok {
			if !strings.HasPrefix(k.Value, "/") {
				return fail(k, k.Value+": "+what, "")
			}
			*dst = k.Value
		}
		return nil
	}

	// The keys of every chroot, in schroot's order.
	for _, k := range g.keys {
		if strings.HasPrefix(k.Name, "description[") && strings.HasSuffix(k.Name, "]") {
			used[k.Name] = true // translations: accepted, not shown
		}
	}
	for _, name := range []string{"active", "run-setup-scripts", "run-session-scripts", "run-exec-scripts"} {
		obsolete(name)
	}
	if k, ok := get("profile"); ok {
		c.SetProfile(k.Value)
	}
	if k, ok := get("script-config"); ok {
		warns = append(warns, &SchrootError{File: file, Line: k.Line, Group: g.name,
			What: "Deprecated key ‘script-config’ used", Reason: "This option will be removed in the future; please update your configuration"})
		c.ScriptConfig, c.Profile = k.Value, ""
		for _, s := range []string{"config", "copyfiles", "nssdatabases", "fstab"} {
			delete(c.UserData, "setup."+s)
		}
	}
	obsolete("priority")
	if k, ok := get("aliases"); ok {
		c.Aliases = splitList(k.Value)
		for _, a := range c.Aliases {
			if strings.Contains(a, ":") {
				return nil, warns, fail(k, a+": Invalid name", "Namespace separator ‘:’ may not be used in an alias name")
			}
			if !ValidSchrootName(a) {
				return nil, warns, fail(k, a+": Invalid name", "Naming restrictions are documented in schroot.conf(5)")
			}
		}
	}
	if k, ok := get("environment-filter"); ok {
		if _, err := regexp.CompilePOSIX(k.Value); err != nil {
			return nil, warns, fail(k, fmt.Sprintf("%s: not a regular expression: %v", k.Value, err), "")
		}
		c.EnvironmentFilter = k.Value
	}
	str("description", &c.Description)
	strList("users", &c.Users)
	strList("groups", &c.Groups)
	strList("root-users", &c.RootUsers)
	strList("root-groups", &c.RootGroups)
	if err := disallowed("mount-location"); err != nil {
		return nil, warns, err
	}
	if err := disallowed("name"); err != nil {
		return nil, warns, err
	}
	strList("command-prefix", &c.CommandPrefix)
	if k, ok := get("message-verbosity"); ok {
		if k.Value != "quiet" && k.Value != "normal" && k.Value != "verbose" {
			return nil, warns, fail(k, k.Value+": Message verbosity is invalid", "")
		}
		c.Verbosity = k.Value
	}
	boolean("preserve-environment", &c.PreserveEnvironment)
	str("shell", &c.Shell)

	// The keys of each type.
	switch typ {
	case "directory", "plain":
		_, hasDir := g.get("directory")
		loc, hasLoc := g.get("location")
		if !hasDir && !hasLoc {
			return nil, warns, &SchrootError{File: file, Line: g.line, Group: g.name, What: "Required key ‘directory’ is missing"}
		}
		if err := absolute("directory", "Directory must have an absolute path", &c.Directory); err != nil {
			return nil, warns, err
		}
		if hasLoc {
			if hasDir {
				return nil, warns, disallowed("location")
			}
			obsolete("location")
			if !strings.HasPrefix(loc.Value, "/") {
				return nil, warns, fail(loc, loc.Value+": Directory must have an absolute path", "")
			}
			c.Directory = loc.Value
		}
	case "file":
		if _, ok := g.get("file"); !ok {
			return nil, warns, &SchrootError{File: file, Line: g.line, Group: g.name, What: "Required key ‘file’ is missing"}
		}
		if err := absolute("file", "File must have an absolute path", &c.Tarball); err != nil {
			return nil, warns, err
		}
		if err := absolute("location", "Location must have an absolute path", &c.Location); err != nil {
			return nil, warns, err
		}
		if err := disallowed("file-repack"); err != nil {
			return nil, warns, err
		}
	}
	if k, ok := get("personality"); ok {
		if _, known := Personalities[k.Value]; !known && k.Value != "undefined" {
			return nil, warns, fail(k, fmt.Sprintf("Personality ‘%s’ is unknown", k.Value), "Valid personalities: "+personalityNames())
		}
		c.Personality = k.Value
	}
	if k, ok := get("user-modifiable-keys"); ok {
		c.UserModifiableKeys = sortedSet(splitList(k.Value))
	}
	if k, ok := get("root-modifiable-keys"); ok {
		c.RootModifiableKeys = sortedSet(splitList(k.Value))
	}
	sourceKeys := func() {
		boolean("source-clone", &c.SourceClone)
		strList("source-users", &c.SourceUsers)
		strList("source-groups", &c.SourceGroups)
		strList("source-root-users", &c.SourceRootUsers)
		strList("source-root-groups", &c.SourceRootGroups)
	}
	if typ == "directory" {
		if k, ok := get("union-type"); ok {
			switch k.Value {
			case "none", "overlay", "overlayfs", "aufs", "unionfs":
				c.UnionType = k.Value
			default:
				return nil, warns, fail(k, fmt.Sprintf("Unknown filesystem union type ‘%s’", k.Value), "")
			}
		}
		if c.UnionType != "none" {
			sourceKeys()
		}
		str("union-mount-options", &c.UnionMountOptions)
		if err := absolute("union-overlay-directory", "Union overlay must have an absolute path", &c.UnionOverlayDirectory); err != nil {
			return nil, warns, err
		}
		if err := absolute("union-underlay-directory", "Union underlay must have an absolute path", &c.UnionUnderlayDirectory); err != nil {
			return nil, warns, err
		}
	}
	if typ == "file" {
		sourceKeys()
	}

	// What is left is user data, if its name is one schroot permits.
	var rest []Key
	for _, k := range g.keys {
		if !used[k.Name] {
			rest = append(rest, k)
		}
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i].Name < rest[j].Name })
	for _, k := range rest {
		if !userDataKey.MatchString(k.Name) || reservedDataKeys.MatchString(k.Name) {
			warns = append(warns, &SchrootError{File: file, Line: k.Line, Group: g.name, Key: k.Name,
				What: fmt.Sprintf("Configuration key name ‘%s’ is not a permitted name.", k.Name)})
			continue
		}
		c.UserData[k.Name] = k.Value
	}
	return c, warns, nil
}

func sortedSet(l []string) []string {
	out := slices.Clone(l)
	sort.Strings(out)
	return slices.Compact(out)
}
