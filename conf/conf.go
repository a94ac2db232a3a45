// Package conf reads jailmgr's configuration — /etc/jailmgr.conf and the
// *.conf files of /etc/jailmgr.d beside it — into typed, validated settings.
// Every error names the file, the line and the key.
//
// The [jailmgr] section holds global settings; every other section defines
// a jail (read into Sections for the session layer; its keys are validated
// there).
package conf

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/ini.v1"
)

// DefaultPath is the main configuration file.
// A var, not a const, so that a build can bake another one in
// (make install CONFFILE=..., -X jailmgr/conf.DefaultPath=...).
var DefaultPath = "/etc/jailmgr.conf"

// ErrInvalid is wrapped by every configuration error.
var ErrInvalid = errors.New("conf: invalid configuration")

// Error is one problem in a configuration file.
type Error struct {
	File string
	Line int
	Key  string
	What string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.What)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.What)
}

func (e *Error) Unwrap() error { return ErrInvalid }

// Config is the whole configuration.
type Config struct {
	// Store is the store directory, if the config sets one.
	Store string
	// Mirrors maps a distribution ("debian", "ubuntu") to its mirror URL.
	Mirrors map[string]string
	// SecurityMirrors maps a distribution to the mirror of its security
	// pocket (Debian's is a separate archive).
	SecurityMirrors map[string]string
	// Files lists the files read, in order.
	Files []string
	// Sections holds every jail section by name, as read.
	Sections map[string]*Section
}

// Section is one jail section as written, with where each key stands.
type Section struct {
	Name string
	File string
	Line int
	Keys []Key
}

// Key is one key = value line.
type Key struct {
	Name, Value string
	Line        int
}

// globalKeys are the keys the [jailmgr] section may hold.
var globalKeys = map[string]bool{"store": true, "mirror.debian": true, "mirror.ubuntu": true,
	"security-mirror.debian": true, "security-mirror.ubuntu": true}

// Load reads path (which may be absent) and the *.conf files of the
// jailmgr.d folder beside it. All problems found are returned together.
func Load(path string) (*Config, error) {
	c := &Config{Mirrors: map[string]string{}, SecurityMirrors: map[string]string{}, Sections: map[string]*Section{}}
	files := []string{}
	if _, err := os.Stat(path); err == nil {
		files = append(files, path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	dropins, err := filepath.Glob(filepath.Join(filepath.Dir(path), "jailmgr.d", "*.conf"))
	if err != nil {
		return nil, fmt.Errorf("read config folder: %w", err)
	}
	sort.Strings(dropins)
	files = append(files, dropins...)
	var errs []error
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read config %s: %w", f, err)
		}
		c.Files = append(c.Files, f)
		errs = append(errs, c.parse(f, data)...)
	}
	if len(errs) > 0 {
		return c, errors.Join(errs...)
	}
	return c, nil
}

// lines splits a file into its lines, of any length, as bufio.ScanLines
// does (a final newline ends the last line; a \r before a newline goes).
func lines(data []byte) []string {
	text := strings.TrimSuffix(string(data), "\n")
	if text == "" {
		return nil
	}
	out := strings.Split(text, "\n")
	for i, l := range out {
		out[i] = strings.TrimSuffix(l, "\r")
	}
	return out
}

// parse reads one file. ini.v1 checks the syntax; a line scan finds where
// each section and key stands, which ini.v1 does not record.
func (c *Config) parse(file string, data []byte) []error {
	if _, err := ini.LoadSources(ini.LoadOptions{AllowShadows: true}, data); err != nil {
		return []error{&Error{File: file, Line: 1, What: fmt.Sprintf("not an ini file: %v", err)}}
	}
	var errs []error
	var cur *Section
	for i, raw := range lines(data) {
		line := i + 1
		text := strings.TrimSpace(raw)
		if text == "" || text[0] == '#' || text[0] == ';' {
			continue
		}
		if strings.HasPrefix(text, "[") && strings.HasSuffix(text, "]") {
			name := strings.TrimSpace(text[1 : len(text)-1])
			if name == "jailmgr" {
				cur = &Section{Name: name, File: file, Line: line}
				continue
			}
			if prev, ok := c.Sections[name]; ok {
				errs = append(errs, &Error{File: file, Line: line, What: fmt.Sprintf("jail %q is defined twice (first at %s:%d)", name, prev.File, prev.Line)})
				cur = &Section{Name: name, File: file, Line: line}
				continue
			}
			cur = &Section{Name: name, File: file, Line: line}
			c.Sections[name] = cur
			continue
		}
		k, v, ok := strings.Cut(text, "=")
		if !ok {
			errs = append(errs, &Error{File: file, Line: line, What: "want key = value"})
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if cur == nil {
			errs = append(errs, &Error{File: file, Line: line, Key: k, What: "key outside any section (put it under [jailmgr] or a jail's [name])"})
			continue
		}
		if cur.Name == "jailmgr" {
			if err := c.setGlobal(file, line, k, v); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		cur.Keys = append(cur.Keys, Key{Name: k, Value: v, Line: line})
	}
	return errs
}

func (c *Config) setGlobal(file string, line int, k, v string) error {
	if !globalKeys[k] {
		known := make([]string, 0, len(globalKeys))
		for n := range globalKeys {
			known = append(known, n)
		}
		sort.Strings(known)
		return &Error{File: file, Line: line, Key: k, What: "unknown key in [jailmgr] (known: " + strings.Join(known, ", ") + ")"}
	}
	switch {
	case k == "store":
		if !filepath.IsAbs(v) {
			return &Error{File: file, Line: line, Key: k, What: fmt.Sprintf("%q is not an absolute path", v)}
		}
		c.Store = v
	case strings.HasPrefix(k, "mirror."), strings.HasPrefix(k, "security-mirror."):
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") {
			return &Error{File: file, Line: line, Key: k, What: fmt.Sprintf("%q is not an http, https or file URL", v)}
		}
		if dist, ok := strings.CutPrefix(k, "security-mirror."); ok {
			c.SecurityMirrors[dist] = v
		} else {
			c.Mirrors[strings.TrimPrefix(k, "mirror.")] = v
		}
	}
	return nil
}
