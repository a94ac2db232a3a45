package store

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"jailmgr/debian/control"
	"jailmgr/store/tree"
)

// dpkgDir is where an image keeps dpkg's database.
const dpkgDir = "var/lib/dpkg"

// dpkgDB is what Verify needs of an image's dpkg database.
type dpkgDB struct {
	packages int        // md5sums files read
	files    []packaged // their lines, conffiles left out, diversions applied
}

// readDpkgDB reads the md5sums of every package in the image below
// rootfd, with dpkg's diversions and conffiles. An image without
// var/lib/dpkg/info gives nil.
func readDpkgDB(rootfd int) (*dpkgDB, error) {
	infofd, err := unix.Openat2(rootfd, dpkgDir+"/info", &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolveInRoot})
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open /%s/info: %w", dpkgDir, err)
	}
	info := os.NewFile(uintptr(infofd), dpkgDir+"/info")
	defer info.Close()
	names, err := info.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read /%s/info: %w", dpkgDir, err)
	}
	sort.Strings(names)
	conffiles, err := readConffiles(rootfd)
	if err != nil {
		return nil, err
	}
	diversions, err := readDiversions(rootfd)
	if err != nil {
		return nil, err
	}
	db := &dpkgDB{}
	for _, name := range names {
		pkg, ok := strings.CutSuffix(name, ".md5sums")
		if !ok {
			continue
		}
		rel := dpkgDir + "/info/" + name
		data, err := readAt(rootfd, rel)
		if err != nil {
			return nil, err
		}
		db.packages++
		owner, _, _ := strings.Cut(pkg, ":") // "libc6:amd64" for Multi-Arch: same
		for n, line := range strings.Split(string(data), "\n") {
			if line == "" {
				continue
			}
			sum, p, err := parseMD5Line(line)
			if err != nil {
				return nil, fmt.Errorf("read /%s:%d: %w (dpkg's database is damaged)", rel, n+1, err)
			}
			if conffiles[p] {
				continue
			}
			// A file diverted by another package (or by the admin, ":")
			// was unpacked at the diversion's target.
			if d, ok := diversions[p]; ok && d.by != owner {
				p = d.to
			}
			db.files = append(db.files, packaged{pkg: pkg, path: p, md5: sum})
		}
	}
	return db, nil
}

// parseMD5Line splits "MD5SUM  PATH" (md5sum's text or "*" binary form).
func parseMD5Line(line string) (sum, path string, err error) {
	if len(line) < 35 || line[32] != ' ' || (line[33] != ' ' && line[33] != '*') {
		return "", "", fmt.Errorf("%q is not 'MD5SUM  PATH'", line)
	}
	sum = strings.ToLower(line[:32])
	if _, err := hex.DecodeString(sum); err != nil {
		return "", "", fmt.Errorf("%q is not 'MD5SUM  PATH'", line)
	}
	path, err = cleanPath(line[34:])
	if err != nil || path == "" {
		return "", "", fmt.Errorf("%q names no file inside the image", line)
	}
	return sum, path, nil
}

// readConffiles returns the conffiles of every package in dpkg's status:
// an admin may change them, and dpkg --verify keeps them apart too.
func readConffiles(rootfd int) (map[string]bool, error) {
	rel := dpkgDir + "/status"
	data, err := readAt(rootfd, rel)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	r := control.NewReader(bytes.NewReader(data), "/"+rel)
	for {
		p, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		// " /etc/x.conf MD5 [obsolete]" per continuation line.
		for _, l := range strings.Split(p.Get("Conffiles"), "\n") {
			if f := strings.Fields(l); len(f) > 0 {
				if name, err := cleanPath(f[0]); err == nil && name != "" {
					out[name] = true
				}
			}
		}
	}
}

type diversion struct{ to, by string }

// readDiversions reads dpkg's diversions file: for each diversion three
// lines, the path, where it is diverted to, and the diverting package
// (":" for a local diversion, which applies to every package).
func readDiversions(rootfd int) (map[string]diversion, error) {
	rel := dpkgDir + "/diversions"
	data, err := readAt(rootfd, rel)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil, nil
	}
	if len(lines)%3 != 0 {
		return nil, fmt.Errorf("read /%s: %d lines, not groups of three (path, diverted to, package): dpkg's database is damaged", rel, len(lines))
	}
	out := map[string]diversion{}
	for i := 0; i < len(lines); i += 3 {
		from, err1 := cleanPath(lines[i])
		to, err2 := cleanPath(lines[i+1])
		if err := errors.Join(err1, err2); err != nil || from == "" || to == "" {
			return nil, fmt.Errorf("read /%s:%d: bad diversion %q -> %q: dpkg's database is damaged", rel, i+1, lines[i], lines[i+1])
		}
		out[from] = diversion{to: to, by: lines[i+2]}
	}
	return out, nil
}

// cleanPath turns a path of dpkg's database ("/usr/bin/x", "./usr/bin/x")
// into one relative to the root ("usr/bin/x"). A ".." is refused.
func cleanPath(p string) (string, error) {
	return tree.CleanName(strings.TrimLeft(p, "/"))
}

// readAt reads a regular file below rootfd, resolved as inside the image.
func readAt(rootfd int, rel string) ([]byte, error) {
	f, err := openAt(rootfd, rel, resolveInRoot)
	if errors.Is(err, errNotRegular) {
		return nil, fmt.Errorf("read /%s: %w (dpkg's database is damaged)", rel, err)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read /%s: %w", rel, err)
	}
	return data, nil
}
