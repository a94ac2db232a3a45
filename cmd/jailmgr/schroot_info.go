package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"jailmgr/conf"
)

// schroot 1.6's --info and --config output. Both list what schroot's
// chroot object and its facets (personality, user data, union, source,
// session) report, in the order schroot's code adds them; the tests
// compare them with schroot 1.6.13's own output for the same definitions.

// detail is one line of an --info block.
type detail struct{ key, value string }

func yesNo(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// chrootDetails is schroot's chroot::get_details with its facets'.
func chrootDetails(c *conf.Chroot) []detail {
	d := []detail{
		{"Name", c.Name},
		{"Description", c.Description},
		{"Type", c.Type},
		{"Message Verbosity", c.Verbosity},
		{"Users", strings.Join(c.Users, " ")},
		{"Groups", strings.Join(c.Groups, " ")},
		{"Root Users", strings.Join(c.RootUsers, " ")},
		{"Root Groups", strings.Join(c.RootGroups, " ")},
		{"Aliases", strings.Join(c.Aliases, " ")},
		{"Preserve Environment", yesNo(c.PreserveEnvironment)},
		{"Default Shell", c.Shell},
		{"Environment Filter", c.EnvironmentFilter},
		{"Run Setup Scripts", yesNo(c.RunSetupScripts())},
		{"Configuration Profile", c.Profile},
		{"Script Configuration", c.ScriptConfig},
		{"Session Managed", yesNo(c.SessionClonable())},
		{"Session Cloned", yesNo(c.SourceClonable())},
		{"Session Purged", yesNo(c.SessionPurged())},
	}
	if len(c.CommandPrefix) > 0 {
		d = append(d, detail{"Command Prefix", strings.Join(c.CommandPrefix, " ")})
	}
	if c.Session != nil && c.Session.MountLocation != "" {
		d = append(d, detail{"Mount Location", c.Session.MountLocation})
	}
	if p := c.Path(); p != "" {
		d = append(d, detail{"Path", p})
	}
	switch c.Type {
	case "file":
		if c.Tarball != "" {
			d = append(d, detail{"File", c.Tarball}, detail{"File Repack", yesNo(c.FileRepack)})
		}
		if c.Location != "" {
			d = append(d, detail{"Location", c.Location})
		}
	default:
		d = append(d, detail{"Directory", c.Directory})
	}
	d = append(d, detail{"Personality", c.Personality},
		detail{"User Modifiable Keys", strings.Join(c.UserModifiableKeys, " ")},
		detail{"Root Modifiable Keys", strings.Join(c.RootModifiableKeys, " ")},
		detail{"User Data", ""})
	for _, k := range sortedKeys(c.UserData) {
		d = append(d, detail{"  " + k, c.UserData[k]})
	}
	if c.UnionFacet() {
		d = append(d, detail{"Filesystem Union Type", c.UnionType})
		if c.UnionConfigured() {
			if c.UnionMountOptions != "" {
				d = append(d, detail{"Filesystem Union Mount Options", c.UnionMountOptions})
			}
			d = append(d, detail{"Filesystem Union Overlay Directory", c.UnionOverlayDirectory},
				detail{"Filesystem Union Underlay Directory", c.UnionUnderlayDirectory})
		}
	}
	sourceUsers := func(users, groups, rootUsers, rootGroups []string) {
		d = append(d, detail{"Source Users", strings.Join(users, " ")}, detail{"Source Groups", strings.Join(groups, " ")},
			detail{"Source Root Users", strings.Join(rootUsers, " ")}, detail{"Source Root Groups", strings.Join(rootGroups, " ")})
	}
	if c.SourceClonable() {
		sourceUsers(c.SourceUsers, c.SourceGroups, c.SourceRootUsers, c.SourceRootGroups)
	}
	if s := c.Session; s != nil {
		if s.OriginalName != "" {
			d = append(d, detail{"Original Chroot Name", s.OriginalName}, detail{"Selected Chroot Name", s.SelectedName})
		}
		d = append(d, detail{"Session ID", c.Name})
		// schroot reads a union session back from its session file, where
		// the union facet brings back empty source settings.
		if c.UnionConfigured() {
			sourceUsers(nil, nil, nil, nil)
		}
	}
	return d
}

// writeDetails prints an --info block: a title, then each key padded to
// the widest (at least 20) plus two.
func writeDetails(w io.Writer, c *conf.Chroot) {
	title := "Chroot"
	switch {
	case c.Session != nil:
		title = "Session"
	case c.Source:
		title = "Source"
	}
	d := chrootDetails(c)
	width := 20
	for _, x := range d {
		if n := utf8.RuneCountInString(x.key); n > width {
			width = n
		}
	}
	width += 2
	fmt.Fprintf(w, "  ─── %s ───\n", title)
	for _, x := range d {
		fmt.Fprintf(w, "  %s%s%s\n", x.key, strings.Repeat(" ", width-utf8.RuneCountInString(x.key)), x.value)
	}
}

// chrootKeyfile is schroot's chroot::get_keyfile with its facets': the
// chroot as a key file group.
func chrootKeyfile(c *conf.Chroot) map[string]string {
	k := map[string]string{
		"type":                 c.Type,
		"profile":              c.Profile,
		"aliases":              strings.Join(c.Aliases, ","),
		"environment-filter":   c.EnvironmentFilter,
		"description":          c.Description,
		"users":                strings.Join(c.Users, ","),
		"groups":               strings.Join(c.Groups, ","),
		"root-users":           strings.Join(c.RootUsers, ","),
		"root-groups":          strings.Join(c.RootGroups, ","),
		"command-prefix":       strings.Join(c.CommandPrefix, ","),
		"message-verbosity":    c.Verbosity,
		"preserve-environment": yesNo(c.PreserveEnvironment),
		"shell":                c.Shell,
		"user-modifiable-keys": strings.Join(c.UserModifiableKeys, ","),
		"root-modifiable-keys": strings.Join(c.RootModifiableKeys, ","),
	}
	if c.ScriptConfig != "" {
		k["script-config"] = c.ScriptConfig
	}
	if c.Session != nil {
		k["name"] = c.Name
		k["mount-location"] = c.Session.MountLocation
		k["original-name"] = c.Session.OriginalName
		k["selected-name"] = c.Session.SelectedName
	}
	switch c.Type {
	case "file":
		k["file"], k["location"] = c.Tarball, c.Location
		if c.Session != nil {
			k["file-repack"] = yesNo(c.FileRepack)
		}
	default:
		k["directory"] = c.Directory
	}
	if c.Personality != "undefined" {
		k["personality"] = c.Personality
	}
	for key, v := range c.UserData {
		k[key] = v
	}
	if c.UnionFacet() {
		k["union-type"] = c.UnionType
		if c.UnionConfigured() {
			k["union-mount-options"] = c.UnionMountOptions
			k["union-overlay-directory"] = c.UnionOverlayDirectory
			k["union-underlay-directory"] = c.UnionUnderlayDirectory
		}
	}
	if c.SourceClonable() || (c.Session != nil && c.UnionConfigured()) {
		src := c
		if c.Session != nil {
			src = &conf.Chroot{SourceClone: true}
		}
		k["source-clone"] = yesNo(src.SourceClone)
		k["source-users"] = strings.Join(src.SourceUsers, ",")
		k["source-groups"] = strings.Join(src.SourceGroups, ",")
		k["source-root-users"] = strings.Join(src.SourceRootUsers, ",")
		k["source-root-groups"] = strings.Join(src.SourceRootGroups, ",")
	}
	return k
}

// writeConfig prints --config: a dated header, then the chroots defined
// by the configuration (not the source chroots derived from them) as key
// file groups, sorted by name, keys sorted.
func writeConfig(w io.Writer, chroots []*conf.Chroot, now time.Time) {
	fmt.Fprintf(w, "# schroot configuration generated by schroot (jailmgr) on %s\n\n", now.Format("02 Jan 2006"))
	groups := map[string]*conf.Chroot{}
	for _, c := range chroots {
		// schroot reads sessions back from their files, where every one
		// is an original chroot, even a source chroot's session.
		if !c.Source || c.Session != nil {
			groups[c.Name] = c
		}
	}
	for i, name := range sortedKeys(groups) {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "[%s]\n", name)
		k := chrootKeyfile(groups[name])
		for _, key := range sortedKeys(k) {
			fmt.Fprintf(w, "%s=%s\n", key, k[key])
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
