package bootstrap

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"jailmgr/bootstrap/ldso"
	"jailmgr/bootstrap/ldso/ldsotest"
	"jailmgr/store"
)

// hostJailExtras is the documented list (README.md, "Images from host
// binaries") of what a from-host image holds besides the binaries, their
// libraries and the loader: folders with their modes, files with their
// content. It is spelled out here, not taken from the code, so that a file
// added to images without being documented fails the tests.
var hostJailExtras = map[string]string{
	"/etc":        "dir 0755",
	"/root":       "dir 0700",
	"/proc":       "dir 0555",
	"/sys":        "dir 0555",
	"/dev":        "dir 0755",
	"/tmp":        "dir 1777",
	"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
	"/etc/group":  "root:x:0:\nnogroup:x:65534:\n",
}

// wantTree is what an image made of objects must hold, worked out
// independently of the code under test: each object path walked on the
// host component by component, every symlink met kept with its target,
// the file it ends at, the folders on the way; plus the documented extras.
// Values: "dir", "link TARGET", "file HOSTPATH", or an extra's spec.
func wantTree(t *testing.T, root string, objects []string) map[string]string {
	t.Helper()
	want := map[string]string{}
	for p, spec := range hostJailExtras {
		want[p] = spec
	}
	var walk func(p string, depth int)
	walk = func(p string, depth int) {
		if depth > 40 {
			t.Fatalf("symlink loop at %s", p)
		}
		cur := "/"
		parts := strings.Split(strings.Trim(p, "/"), "/")
		for i, c := range parts {
			next := filepath.Join(cur, c)
			host := filepath.Join(root, next)
			st, err := os.Lstat(host)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode()&fs.ModeSymlink != 0 {
				target, _ := os.Readlink(host)
				want[next] = "link " + target
				base := cur
				if filepath.IsAbs(target) {
					base = "/"
				}
				walk(filepath.Join(append([]string{base, target}, parts[i+1:]...)...), depth+1)
				return
			}
			if i == len(parts)-1 {
				want[next] = "file " + host
			} else if _, ok := want[next]; !ok {
				want[next] = "dir"
			}
			cur = next
		}
	}
	for _, o := range objects {
		walk(o, 0)
	}
	return want
}

// checkTree compares an image's root with wantTree's answer: same paths,
// same kinds, same link targets, same bytes.
func checkTree(t *testing.T, rootfs string, want map[string]string) {
	t.Helper()
	got := map[string]bool{}
	err := filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == rootfs {
			return err
		}
		rel := "/" + strings.TrimPrefix(p, rootfs+"/")
		got[rel] = true
		spec, ok := want[rel]
		if !ok {
			t.Errorf("the image holds %s, which is no binary, library, loader or documented file", rel)
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case spec == "dir":
			if !d.IsDir() {
				t.Errorf("%s: %v, want a folder", rel, info.Mode())
			}
		case strings.HasPrefix(spec, "dir "):
			if mode := spec[4:]; !d.IsDir() || modeString(info.Mode()) != mode {
				t.Errorf("%s: %v, want a folder of mode %s", rel, info.Mode(), mode)
			}
		case strings.HasPrefix(spec, "link "):
			if target, err := os.Readlink(p); err != nil || target != spec[5:] {
				t.Errorf("%s: link to %q (%v), want %q", rel, target, err, spec[5:])
			}
		case strings.HasPrefix(spec, "file "):
			a, _ := os.ReadFile(spec[5:])
			b, err := os.ReadFile(p)
			if err != nil || !info.Mode().IsRegular() || !bytes.Equal(a, b) {
				t.Errorf("%s: not a copy of the host's %s (%v)", rel, spec[5:], err)
			}
		default:
			if b, err := os.ReadFile(p); err != nil || string(b) != spec {
				t.Errorf("%s holds %q (%v), want %q", rel, b, err, spec)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range want {
		if !got[p] {
			t.Errorf("the image lacks %s (%s)", p, want[p])
		}
	}
}

func modeString(m fs.FileMode) string {
	n := uint32(m.Perm())
	if m&fs.ModeSticky != 0 {
		n |= 0o1000
	}
	return fmt.Sprintf("%04o", n)
}

// lddObjects is the reference closure of bins: the files ldd says the
// loader maps, plus the binaries. (Running ldd on the host's own binaries
// is the test's cross-check; the code under test never runs anything.)
func lddObjects(t *testing.T, bins ...string) []string {
	t.Helper()
	if _, err := exec.LookPath("ldd"); err != nil {
		t.Skip("ldd (libc-bin) is not installed: no reference to compare with")
	}
	set := append([]string{}, bins...)
	for _, bin := range bins {
		out, err := exec.Command("ldd", bin).Output()
		if err != nil {
			t.Fatalf("ldd %s: %v", bin, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				set = append(set, f[2])
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				set = append(set, f[0])
			}
		}
	}
	sort.Strings(set)
	return slices.Compact(set)
}

func TestFromHostBashAndLs(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bins := []string{"/bin/bash", "/bin/ls"}
	objects := lddObjects(t, bins...)
	var log bytes.Buffer
	img, err := FromHost(st, FromHostOptions{Name: "tools", Paths: bins, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, img.RootFS(), wantTree(t, "/", objects))
	m := img.Manifest
	if m.Distribution != "host" || m.Suite != "host" || m.Variant != "from-host" || img.Ref() != "tools:1" || m.Size == 0 {
		t.Errorf("manifest %+v", m)
	}
	if out, err := exec.Command("dpkg", "--print-architecture").Output(); err == nil && m.Arch != strings.TrimSpace(string(out)) {
		t.Errorf("arch %q, dpkg says %s", m.Arch, out)
	}
	// The packages, against dpkg -S of the paths ldd gives (the names dpkg
	// knows them by).
	if _, err := exec.LookPath("dpkg"); err == nil {
		var want []string
		complete := true
		for _, o := range objects {
			// dpkg knows a file by the path its package ships, which on a
			// merged-/usr host may be the one ldd gives, the /usr one, or
			// the real one.
			real, _ := filepath.EvalSymlinks(o)
			var out []byte
			for _, alias := range []string{o, "/usr" + o, real} {
				if out, err = exec.Command("dpkg", "-S", alias).Output(); err == nil {
					break
				}
			}
			if err != nil {
				t.Logf("dpkg -S %s: %v: no reference for its package", o, err)
				complete = false
				continue
			}
			pkg, _, _ := strings.Cut(string(out), ": ")
			name, _, _ := strings.Cut(pkg, ":")
			want = append(want, name)
		}
		sort.Strings(want)
		want = slices.Compact(want)
		var got []string
		for _, p := range m.Packages {
			got = append(got, p.Name)
			if p.Version == "" || p.Arch == "" {
				t.Errorf("package %+v lacks its version or architecture", p)
			}
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("packages %v lack %s", got, w)
			}
		}
		if complete && len(got) != len(want) {
			t.Errorf("packages %v, dpkg -S says %v", got, want)
		}
	}
	if !strings.Contains(log.String(), "2 binaries") {
		t.Errorf("log: %q", log.String())
	}
	// A second create is the next version of the same name.
	img2, err := FromHost(st, FromHostOptions{Name: "tools", Paths: bins[:1]})
	if err != nil || img2.Ref() != "tools:2" {
		t.Errorf("second create: %v, %v", img2, err)
	}
}

// fakeHostRoot is a folder standing for a merged-/usr host whose dynamic
// loader is reached through an absolute symlink, with one library in a
// folder only ld.so.conf names, and a dpkg database that owns libc.
func fakeHostRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask, setuid included
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		t.Helper()
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"usr/bin", "usr/lib/x86_64-linux-gnu", "usr/lib64"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	link("usr/bin", "bin")
	link("usr/lib", "lib")
	link("usr/lib64", "lib64")
	write("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", ldsotest.Object{Soname: "ld-linux-x86-64.so.2"}.Bytes(), 0o755)
	link("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "usr/lib64/ld-linux-x86-64.so.2")
	write("usr/lib/x86_64-linux-gnu/libc.so.6", ldsotest.Object{Soname: "libc.so.6", Needed: []string{"ld-linux-x86-64.so.2"}}.Bytes(), 0o755)
	write("opt/vendor/lib/libv.so.1", ldsotest.Object{Soname: "libv.so.1", Needed: []string{"libc.so.6"}}.Bytes(), 0o644)
	write("etc/ld.so.conf", []byte("include /etc/ld.so.conf.d/*.conf\n"), 0o644)
	write("etc/ld.so.conf.d/vendor.conf", []byte("/opt/vendor/lib\n"), 0o644)
	write("etc/ld.so.cache", []byte("a cache\n"), 0o644)
	write("usr/bin/tool", ldsotest.Object{Type: elf.ET_EXEC, Interp: "/lib64/ld-linux-x86-64.so.2", Needed: []string{"libc.so.6"}}.Bytes(), 0o4755)
	write("usr/bin/vendor", ldsotest.Object{Type: elf.ET_EXEC, Interp: "/lib64/ld-linux-x86-64.so.2", Needed: []string{"libv.so.1"}}.Bytes(), 0o755)
	write("tmp/stray", ldsotest.Object{Type: elf.ET_EXEC, Static: true}.Bytes(), 0o755)
	write("var/lib/dpkg/info/libc6:amd64.list", []byte("/.\n/lib\n/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu/libc.so.6\n/lib64/ld-linux-x86-64.so.2\n"), 0o644)
	write("var/lib/dpkg/info/other.list", []byte("/.\n/usr/bin/other\n"), 0o644)
	write("var/lib/dpkg/status", []byte("Package: other\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n\n"+
		"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nVersion: 2.36-9\n\n"), 0o644)
	return root
}

func TestFromHostFakeHost(t *testing.T) {
	root := fakeHostRoot(t)
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	img, err := FromHost(st, FromHostOptions{Name: "tool", Paths: []string{"/bin/tool"}, HostRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	want := wantTree(t, root, []string{"/bin/tool", "/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6"})
	checkTree(t, img.RootFS(), want)
	info, err := os.Stat(filepath.Join(img.RootFS(), "usr/bin/tool"))
	if err != nil || info.Mode() != 0o755 {
		t.Errorf("a setuid binary must lose setuid in the image: %v, %v", info.Mode(), err)
	}
	m := img.Manifest
	if m.Arch != "amd64" || !m.MergedUsr || len(m.Packages) != 1 || m.Packages[0] != (store.Package{Name: "libc6", Version: "2.36-9", Arch: "amd64"}) {
		t.Errorf("manifest: %+v", m)
	}

	// A library that only ld.so.conf's folders hold is found through the
	// cache at run time: the host's cache comes along.
	img, err = FromHost(st, FromHostOptions{Name: "vendor", Paths: []string{"/usr/bin/vendor"}, HostRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	want = wantTree(t, root, []string{"/usr/bin/vendor", "/lib64/ld-linux-x86-64.so.2", "/opt/vendor/lib/libv.so.1", "/lib/x86_64-linux-gnu/libc.so.6", "/etc/ld.so.cache"})
	checkTree(t, img.RootFS(), want)
}

func TestFromHostRefusesBadInput(t *testing.T) {
	root := fakeHostRoot(t)
	if err := os.WriteFile(filepath.Join(root, "usr/bin/script"), []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		paths []string
		is    error
		match string
	}{
		{"ok", []string{"/usr/bin/missing"}, fs.ErrNotExist, "/usr/bin/missing"},
		{"ok", []string{"/usr/bin/tool", "/usr/bin/script"}, ldso.ErrNotELF, "/usr/bin/script is a script for /bin/sh"},
		{"ok", []string{"/etc/ld.so.conf"}, ldso.ErrNotELF, "/etc/ld.so.conf"},
		{"ok", []string{"/tmp/stray"}, nil, "/tmp/stray: it lies under /tmp, which every session mounts over"},
		{"ok", []string{"usr/bin/tool"}, ErrUsage, "not an absolute path"},
		{"ok", nil, ErrUsage, "no host binaries"},
		{"bad/name", []string{"/usr/bin/tool"}, ErrUsage, `"bad/name" is not an image name`},
		{"-x", []string{"/usr/bin/tool"}, ErrUsage, "not an image name"},
	} {
		_, err := FromHost(st, FromHostOptions{Name: tc.name, Paths: tc.paths, HostRoot: root})
		if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.match) {
			t.Errorf("%s %v: %v; want %v and %q", tc.name, tc.paths, err, tc.is, tc.match)
		}
	}
	// Nothing was written: no image, no staging leftover.
	for _, sub := range []string{"images", "staging"} {
		if ents, _ := os.ReadDir(filepath.Join(dir, sub)); len(ents) != 0 {
			t.Errorf("%s/ after refused input: %v", sub, ents)
		}
	}
}
