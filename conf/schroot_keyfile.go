package conf

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
)

// schroot's key file syntax, and how schroot 1.6 reads a chroot from a
// group of it: its keys per type, in its order, with its defaults, its
// warnings and its refusals.

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
	for i, text := range lines(data) {
		line := i + 1
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
	return groups, nil
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
// Both are compiled on first use, not by every jailmgr process at start.
var (
	userDataKey      = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([a-z][a-z0-9]*\.)+[a-z][a-z0-9-]*$`) })
	reservedDataKeys = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(((auth|chroot|host|libexec|mount|session|status|sysconf)\..*)|setup.data.dir)$`)
	})
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
		if !userDataKey().MatchString(k.Name) || reservedDataKeys().MatchString(k.Name) {
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
