package archivetest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// dpkgDir is the host's dpkg database; a variable so tests can point it at
// a fixture.
var dpkgDir = "/var/lib/dpkg"

// hostControlFiles are the files of /var/lib/dpkg/info that go back into a
// repacked package's control.tar. md5sums is regenerated from what is read.
var hostControlFiles = []string{"preinst", "postinst", "prerm", "postrm", "config", "templates", "conffiles", "triggers", "shlibs", "symbols"}

// HostPackages repacks packages installed on this host: their control
// fields from the dpkg status file, their files as they are on disk now
// (paths listed in info/NAME.list that no longer exist are left out;
// diverted files are read from where the diversion put them), and their
// maintainer scripts and conffiles list. A name may carry an architecture
// ("libc6:amd64"); without one the native or "all" instance is taken.
// Packages are compressed with gzip, for speed.
func HostPackages(names ...string) ([]Package, error) {
	status, err := readStatus()
	if err != nil {
		return nil, err
	}
	divs, err := readDiversions()
	if err != nil {
		return nil, err
	}
	out := make([]Package, 0, len(names))
	for _, n := range names {
		para, err := status.find(n)
		if err != nil {
			return nil, err
		}
		p, err := repack(para, status, divs)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// minimalSeeds start the closure of MinimalSystem: enough for a root whose
// own dpkg can configure packages.
var minimalSeeds = []string{"dpkg", "dash", "coreutils", "tar", "libc-bin", "base-files", "base-passwd"}

// MinimalSystem repacks, with HostPackages, the host's dpkg, dash,
// coreutils, tar, libc-bin, base-files and base-passwd (those installed)
// and everything they Pre-Depend or Depend on, taking for each dependency
// the first alternative installed (directly or through Provides) and
// ignoring versions. Priority and Essential stay as on the host. It fails if
// dpkg is not installed or a dependency is not satisfied on the host.
// Extra names more seeds (such as apt) that must be installed on the host.
func MinimalSystem(extra ...string) ([]Package, error) {
	status, err := readStatus()
	if err != nil {
		return nil, err
	}
	if _, err := status.find("dpkg"); err != nil {
		return nil, fmt.Errorf("minimal system: %w", err)
	}
	var queue []*hostPackage
	seen := map[*hostPackage]bool{}
	for _, n := range extra {
		if _, err := status.find(n); err != nil {
			return nil, fmt.Errorf("minimal system: %w", err)
		}
	}
	for _, n := range append(minimalSeeds[:len(minimalSeeds):len(minimalSeeds)], extra...) {
		if hp, err := status.find(n); err == nil && !seen[hp] {
			seen[hp] = true
			queue = append(queue, hp)
		}
	}
	for i := 0; i < len(queue); i++ {
		hp := queue[i]
		for _, fieldName := range []string{"Pre-Depends", "Depends"} {
			for _, alts := range strings.Split(hp.get(fieldName), ",") {
				if strings.TrimSpace(alts) == "" {
					continue
				}
				dep := status.satisfy(alts, hp.get("Architecture"))
				if dep == nil {
					return nil, fmt.Errorf("minimal system: %s %s %q: nothing installed satisfies it", hp.name, fieldName, strings.TrimSpace(alts))
				}
				if !seen[dep] {
					seen[dep] = true
					queue = append(queue, dep)
				}
			}
		}
	}
	divs, err := readDiversions()
	if err != nil {
		return nil, err
	}
	out := make([]Package, 0, len(queue))
	for _, hp := range queue {
		p, err := repack(hp, status, divs)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

type hostPackage struct {
	name   string
	fields []field
}

func (h *hostPackage) get(name string) string {
	for _, f := range h.fields {
		if strings.EqualFold(f.name, name) {
			return f.value
		}
	}
	return ""
}

type hostStatus struct {
	pkgs []*hostPackage // installed ones only
}

func readStatus() (*hostStatus, error) {
	name := path.Join(dpkgDir, "status")
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read dpkg status: %w", err)
	}
	paras, err := parseParagraphs(data, name)
	if err != nil {
		return nil, err
	}
	st := &hostStatus{}
	for _, fields := range paras {
		hp := &hostPackage{fields: fields}
		hp.name = hp.get("Package")
		// "install ok installed", "hold ok installed": the last word is
		// the state that matters.
		if s := strings.Fields(hp.get("Status")); len(s) == 3 && s[2] == "installed" {
			st.pkgs = append(st.pkgs, hp)
		}
	}
	return st, nil
}

// find returns the installed package name ("name" or "name:arch").
func (st *hostStatus) find(name string) (*hostPackage, error) {
	n, arch, _ := strings.Cut(name, ":")
	var match []*hostPackage
	for _, hp := range st.pkgs {
		if hp.name == n && (arch == "" || hp.get("Architecture") == arch) {
			match = append(match, hp)
		}
	}
	if len(match) == 0 {
		return nil, fmt.Errorf("find host package %s: not installed", name)
	}
	for _, hp := range match {
		if a := hp.get("Architecture"); a == hostArch() || a == "all" {
			return hp, nil
		}
	}
	return match[0], nil
}

// satisfy returns the installed package that provides the first alternative
// of "a (>= 1) | b:any | c [amd64]" that something installed satisfies.
func (st *hostStatus) satisfy(alts, arch string) *hostPackage {
	for _, alt := range strings.Split(alts, "|") {
		name := strings.TrimSpace(alt)
		name, _, _ = strings.Cut(name, " ")
		name, _, _ = strings.Cut(name, "(")
		name, _, _ = strings.Cut(name, "[")
		name, _, _ = strings.Cut(name, ":")
		if name == "" {
			continue
		}
		if hp, err := st.find(name); err == nil {
			return hp
		}
		for _, hp := range st.pkgs {
			a := hp.get("Architecture")
			if a != arch && a != "all" {
				continue
			}
			for _, prov := range strings.Split(hp.get("Provides"), ",") {
				prov = strings.TrimSpace(prov)
				prov, _, _ = strings.Cut(prov, " ")
				prov, _, _ = strings.Cut(prov, "(")
				if prov == name {
					return hp
				}
			}
		}
	}
	return nil
}

// diversion says where another package moved a file to.
type diversion struct{ to, by string }

// readDiversions reads dpkg's diversions file: lines in threes (from, to,
// diverting package, ":" for a local diversion).
func readDiversions() (map[string]diversion, error) {
	data, err := os.ReadFile(path.Join(dpkgDir, "diversions"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read dpkg diversions: %w", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	divs := map[string]diversion{}
	for i := 0; i+2 < len(lines); i += 3 {
		divs[lines[i]] = diversion{to: lines[i+1], by: lines[i+2]}
	}
	return divs, nil
}

// repack turns an installed package back into a Package.
func repack(hp *hostPackage, st *hostStatus, divs map[string]diversion) (Package, error) {
	arch := hp.get("Architecture")
	p := Package{
		Name:         hp.name,
		Version:      hp.get("Version"),
		Architecture: arch,
		Priority:     hp.get("Priority"),
		Section:      hp.get("Section"),
		MultiArch:    hp.get("Multi-Arch"),
		Essential:    hp.get("Essential") == "yes",
		Maintainer:   hp.get("Maintainer"),
		Description:  hp.get("Description"),
		Depends:      hp.get("Depends"),
		PreDepends:   hp.get("Pre-Depends"),
		Recommends:   hp.get("Recommends"),
		Suggests:     hp.get("Suggests"),
		Provides:     hp.get("Provides"),
		Conflicts:    hp.get("Conflicts"),
		Breaks:       hp.get("Breaks"),
		Replaces:     hp.get("Replaces"),
		Compression:  "gz",
	}
	info := path.Join(dpkgDir, "info")
	// Multi-Arch: same packages keep their files under NAME:ARCH.
	base := path.Join(info, hp.name)
	if _, err := os.Stat(base + ".list"); err != nil {
		base = path.Join(info, hp.name+":"+arch)
	}
	list, err := os.ReadFile(base + ".list")
	if err != nil {
		return Package{}, fmt.Errorf("repack %s: read file list: %w", hp.name, err)
	}
	files, err := hostFiles(hp.name, strings.Split(string(list), "\n"), divs)
	if err != nil {
		return Package{}, fmt.Errorf("repack %s: %w", hp.name, err)
	}
	p.Files = files
	for _, c := range hostControlFiles {
		data, err := os.ReadFile(base + "." + c)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return Package{}, fmt.Errorf("repack %s: read %s: %w", hp.name, c, err)
		}
		p.Control = append(p.Control, ControlFile{Name: c, Data: data})
	}
	return p, nil
}

// hostFiles reads the listed paths of package pkg from the host.
func hostFiles(pkg string, list []string, divs map[string]diversion) ([]File, error) {
	// A listed path with listed children is a directory in the package
	// even where the host has replaced it by a symlink (merged /usr turns
	// /bin into one): the repacked package must look like the original.
	isParent := map[string]bool{}
	var paths []string
	for _, l := range list {
		if l == "" || l == "/." {
			continue
		}
		paths = append(paths, l)
		isParent[path.Dir(l)] = true
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	var files []File
	for _, p := range paths {
		src := p
		if d, ok := divs[p]; ok && d.by != pkg {
			src = d.to
		}
		fi, err := os.Lstat(src)
		if err != nil {
			continue // gone from the host: leave it out
		}
		if isParent[p] && fi.Mode()&fs.ModeSymlink != 0 {
			if st, err := os.Stat(src); err == nil && st.IsDir() {
				fi = st
			}
		}
		uid, gid := fileOwner(fi)
		f := File{Path: p, Mode: fi.Mode(), Uid: uid, Gid: gid}
		switch {
		case fi.IsDir():
		case fi.Mode()&fs.ModeSymlink != 0:
			if f.Link, err = os.Readlink(src); err != nil {
				return nil, fmt.Errorf("read symlink: %w", err)
			}
		case fi.Mode().IsRegular():
			if f.Data, err = os.ReadFile(src); err != nil {
				return nil, fmt.Errorf("read file: %w", err)
			}
		default:
			continue // sockets, devices: nothing a package ships
		}
		files = append(files, f)
	}
	return files, nil
}

// parseParagraphs splits deb822 data into paragraphs of fields. A
// multi-line value is its first line, then "\n" and each continuation line
// as written.
func parseParagraphs(data []byte, name string) ([][]field, error) {
	var paras [][]field
	var cur []field
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		l := sc.Text()
		switch {
		case strings.TrimSpace(l) == "":
			if cur != nil {
				paras = append(paras, cur)
				cur = nil
			}
		case l[0] == ' ' || l[0] == '\t':
			if cur == nil {
				return nil, fmt.Errorf("parse %s: line %d: continuation line outside a field", name, line)
			}
			cur[len(cur)-1].value += "\n" + l
		case l[0] == '#':
		default:
			n, v, ok := strings.Cut(l, ":")
			if !ok {
				return nil, fmt.Errorf("parse %s: line %d: no colon in field line", name, line)
			}
			cur = append(cur, field{name: n, value: strings.TrimSpace(v)})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	if cur != nil {
		paras = append(paras, cur)
	}
	return paras, nil
}
