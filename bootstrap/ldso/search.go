package ldso

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// defaultDirs are the folders the loader searches last, after the cache,
// for an ABI: the multiarch pair and /lib, /usr/lib where the host has the
// multiarch layout (Debian, Ubuntu), else /lib64, /usr/lib64 for 64-bit
// objects and /lib, /usr/lib for 32-bit ones (the upstream glibc layout).
func defaultDirs(root string, a ABI) []string {
	if multiarch(root, a) {
		t := a.info().triplet
		return []string{"/lib/" + t, "/usr/lib/" + t, "/lib", "/usr/lib"}
	}
	if a.Class == elf.ELFCLASS64 {
		return []string{"/lib64", "/usr/lib64"}
	}
	return []string{"/lib", "/usr/lib"}
}

func multiarch(root string, a ABI) bool {
	t := a.info().triplet
	if t == "" {
		return false
	}
	for _, d := range []string{"/lib/" + t, "/usr/lib/" + t} {
		if real, _, err := Realpath(root, d); err == nil {
			if st, err := os.Stat(hostPath(root, real)); err == nil && st.IsDir() {
				return true
			}
		}
	}
	return false
}

// libDST is what $LIB expands to: Debian's loader says lib/<triplet>.
func libDST(root string, a ABI) string {
	if multiarch(root, a) {
		return "lib/" + a.info().triplet
	}
	if a.Class == elf.ELFCLASS64 {
		return "lib64"
	}
	return "lib"
}

// maxIncludeDepth stops include cycles in ld.so.conf.
const maxIncludeDepth = 16

// readConf reads the folders ldconfig puts in ld.so.cache: /etc/ld.so.conf
// and what it includes (globs, relative to the including file's folder),
// in order, each once. A missing ld.so.conf is no folder at all.
func readConf(root string) ([]string, error) {
	var dirs []string
	seen := map[string]bool{}
	var read func(name string, depth int) error
	read = func(name string, depth int) error {
		if depth > maxIncludeDepth {
			return fmt.Errorf("read %s: includes nested deeper than %d", name, maxIncludeDepth)
		}
		real, _, err := Realpath(root, name)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(hostPath(root, real))
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line := sc.Text()
			if i := strings.IndexByte(line, '#'); i >= 0 {
				line = line[:i]
			}
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			switch f[0] {
			case "include":
				for _, pat := range f[1:] {
					if !path.IsAbs(pat) {
						pat = path.Join(path.Dir(name), pat)
					}
					matches, err := filepath.Glob(hostPath(root, pat))
					if err != nil {
						return fmt.Errorf("read %s: include %s: %w", name, pat, err)
					}
					for _, m := range matches {
						rel := m
						if root != "" && root != "/" {
							rel = "/" + strings.TrimPrefix(strings.TrimPrefix(m, filepath.Clean(root)), "/")
						}
						if err := read(rel, depth+1); err != nil {
							return err
						}
					}
				}
				continue
			case "hwcap":
				continue // obsolete, and about subfolders we do not search
			}
			// Folders are separated by blanks, ':' or ','; the old
			// "dir=TYPE" form names a library type ldconfig ignores now.
			for _, d := range strings.FieldsFunc(line, func(r rune) bool {
				return r == ' ' || r == '\t' || r == ':' || r == ','
			}) {
				d, _, _ = strings.Cut(d, "=")
				d = path.Clean(d)
				if path.IsAbs(d) && !seen[d] {
					seen[d] = true
					dirs = append(dirs, d)
				}
			}
		}
		return nil
	}
	err := read("/etc/ld.so.conf", 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return dirs, err
}

// expand replaces the dynamic string tokens of one path: $ORIGIN, $LIB and
// $PLATFORM, bare or in braces. It reports false when a token has no value
// here, and the loader then drops the path.
func expand(s string, vars map[string]string) (string, bool) {
	if !strings.Contains(s, "$") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' {
			b.WriteByte(s[i])
			i++
			continue
		}
		name, n := "", 0
		if strings.HasPrefix(s[i+1:], "{") {
			if end := strings.IndexByte(s[i+2:], '}'); end >= 0 {
				name, n = s[i+2:i+2+end], end+3
			}
		} else {
			for _, k := range []string{"ORIGIN", "LIB", "PLATFORM"} {
				rest := s[i+1:]
				if strings.HasPrefix(rest, k) && (len(rest) == len(k) || !isNameByte(rest[len(k)])) {
					name, n = k, len(k)+1
					break
				}
			}
		}
		v, known := vars[name]
		if name == "" || !slices.Contains([]string{"ORIGIN", "LIB", "PLATFORM"}, name) {
			// Not a token the loader knows: it stays as written.
			b.WriteByte('$')
			i++
			continue
		}
		if !known || v == "" {
			return "", false
		}
		b.WriteString(v)
		i += n
	}
	return b.String(), true
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// searchList splits a DT_RPATH or DT_RUNPATH value into folders, expanding
// tokens. Empty and relative entries name the working folder at run time,
// which means nothing for a copy; they are left out. ".." is kept as it is:
// the kernel resolves it after the symlinks before it, not lexically.
func searchList(list string, vars map[string]string) []string {
	var out []string
	for _, d := range strings.Split(list, ":") {
		d, ok := expand(d, vars)
		if !ok || !path.IsAbs(d) {
			continue
		}
		if t := strings.TrimRight(d, "/"); t != "" {
			d = t
		}
		out = append(out, d)
	}
	return out
}

// join names a file in a search folder as the loader does: folder, "/",
// name, with nothing cleaned.
func join(dir, name string) string {
	if strings.HasSuffix(dir, "/") {
		return dir + name
	}
	return dir + "/" + name
}
