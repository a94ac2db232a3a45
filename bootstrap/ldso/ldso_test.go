package ldso

import (
	"debug/elf"
	"errors"
	"io/fs"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"jailmgr/bootstrap/ldso/ldsotest"
)

func paths(c *Closure) []string {
	var out []string
	for _, o := range c.Objects {
		out = append(out, o.Path)
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return slices.Compact(s)
}

// lddPaths is the reference: the files ldd says the loader maps for bin,
// plus bin itself. (The test runs ldd on the host's own trusted binaries;
// the package never does.)
func lddPaths(t *testing.T, bin string) []string {
	t.Helper()
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", bin, err)
	}
	set := []string{bin}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			set = append(set, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			set = append(set, f[0]) // the loader
		case len(f) >= 2 && f[1] == "=>":
			t.Fatalf("ldd %s: %q is not found on this host", bin, line)
		}
	}
	return sorted(set)
}

func TestResolveHostBinariesLikeLdd(t *testing.T) {
	if _, err := exec.LookPath("ldd"); err != nil {
		t.Skip("ldd (libc-bin) is not installed: no reference to compare with")
	}
	var all []string
	for _, bin := range []string{"/bin/bash", "/bin/ls"} {
		c, err := Resolve("/", bin)
		if err != nil {
			t.Fatal(err)
		}
		want := lddPaths(t, bin)
		all = append(all, want...)
		if got := sorted(paths(c)); !slices.Equal(got, want) {
			t.Errorf("closure of %s:\n got %v\nwant %v (ldd)", bin, got, want)
		}
		if c.Objects[0].Path != bin || c.Objects[0].Kind != Argument {
			t.Errorf("closure of %s starts with %+v", bin, c.Objects[0])
		}
		interps := 0
		for _, o := range c.Objects {
			if o.Kind == Interpreter {
				interps++
			}
		}
		if interps != 1 {
			t.Errorf("closure of %s has %d interpreters, want 1", bin, interps)
		}
	}
	c, err := Resolve("/", "/bin/bash", "/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sorted(paths(c)), sorted(all); !slices.Equal(got, want) {
		t.Errorf("closure of bash and ls:\n got %v\nwant %v", got, want)
	}
	if out, err := exec.Command("dpkg", "--print-architecture").Output(); err == nil {
		if got, want := c.ABI.Arch(), strings.TrimSpace(string(out)); got != want {
			t.Errorf("architecture %q, dpkg says %q", got, want)
		}
	}
}

func TestResolveFakeHost(t *testing.T) {
	root := fakeHost(t)
	writeELF(t, root, "usr/bin/app", exe("libc.so.6"))
	c, err := Resolve(root, "/bin/app")
	if err != nil {
		t.Fatal(err)
	}
	// libc needs the loader by its Soname: it is not loaded a second time
	// from /lib/x86_64-linux-gnu.
	want := []string{"/bin/app", loader, "/lib/x86_64-linux-gnu/libc.so.6"}
	if got := paths(c); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if c.ABI.Arch() != "amd64" {
		t.Errorf("arch %q, want amd64", c.ABI.Arch())
	}
	if lib := c.Objects[2]; lib.Kind != Library || lib.NeededBy != c.Objects[0] || lib.Soname != "libc.so.6" || lib.ThroughConf {
		t.Errorf("libc: %+v", lib)
	}

	// A library asked for beside an executable is loaded by that
	// executable's loader: libc's need of the loader is met by it, not by
	// a second path to it.
	writeELF(t, root, "usr/lib/x86_64-linux-gnu/libplug.so", ldsotest.Object{Soname: "libplug.so", Needed: []string{"libc.so.6"}})
	c, err = Resolve(root, "/bin/app", "/usr/lib/x86_64-linux-gnu/libplug.so")
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"/bin/app", "/usr/lib/x86_64-linux-gnu/libplug.so", loader, "/lib/x86_64-linux-gnu/libc.so.6"}
	if got := paths(c); !slices.Equal(got, want) {
		t.Errorf("with a plugin: got %v, want %v", got, want)
	}
}

func TestResolveStatic(t *testing.T) {
	root := fakeHost(t)
	writeELF(t, root, "usr/bin/static", ldsotest.Object{Type: elf.ET_EXEC, Static: true})
	writeELF(t, root, "usr/bin/static-pie", ldsotest.Object{Type: elf.ET_DYN})
	c, err := Resolve(root, "/usr/bin/static", "/usr/bin/static-pie")
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(c); !slices.Equal(got, []string{"/usr/bin/static", "/usr/bin/static-pie"}) {
		t.Errorf("static binaries need nothing else, got %v", got)
	}
}

func TestRpathRunpathOrigin(t *testing.T) {
	root := fakeHost(t)
	// The executable's RPATH serves its libraries' needs too; $ORIGIN of
	// the executable is the folder of its real path, not of a symlink.
	writeELF(t, root, "opt/app/bin/app", ldsotest.Object{Type: elf.ET_EXEC, Interp: loader, Needed: []string{"libapp.so.1"}, RPath: "$ORIGIN/../lib"})
	symlink(t, root, "../../opt/app/bin/app", "usr/bin/app")
	writeELF(t, root, "opt/app/lib/libapp.so.1", ldsotest.Object{Soname: "libapp.so.1", Needed: []string{"libdep.so.2", "libc.so.6"}})
	writeELF(t, root, "opt/app/lib/libdep.so.2", ldsotest.Object{Soname: "libdep.so.2"})
	c, err := Resolve(root, "/usr/bin/app")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/usr/bin/app", loader, "/opt/app/bin/../lib/libapp.so.1", "/opt/app/bin/../lib/libdep.so.2", "/lib/x86_64-linux-gnu/libc.so.6"}
	if got := paths(c); !slices.Equal(got, want) {
		t.Errorf("with RPATH:\n got %v\nwant %v", got, want)
	}

	// DT_RUNPATH serves only the object that carries it.
	writeELF(t, root, "opt/app/bin/app2", ldsotest.Object{Type: elf.ET_EXEC, Interp: loader, Needed: []string{"libapp.so.1"}, RunPath: "${ORIGIN}/../lib"})
	_, err = Resolve(root, "/opt/app/bin/app2")
	var miss *MissingError
	if !errors.As(err, &miss) || !errors.Is(err, ErrNotFound) || miss.Library != "libdep.so.2" ||
		!strings.Contains(err.Error(), "/opt/app/bin/../lib/libapp.so.1 (needed by /opt/app/bin/app2) needs libdep.so.2") {
		t.Errorf("RUNPATH must not serve a library's needs: %v", err)
	}

	// A DT_RUNPATH switches the object's DT_RPATH off.
	writeELF(t, root, "opt/app/bin/app3", ldsotest.Object{Type: elf.ET_EXEC, Interp: loader, Needed: []string{"libapp.so.1"}, RPath: "$ORIGIN/../lib", RunPath: "/nowhere"})
	if _, err := Resolve(root, "/opt/app/bin/app3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RPATH beside RUNPATH was used: %v", err)
	}
}

func TestLibAndPlatformTokens(t *testing.T) {
	root := fakeHost(t)
	writeELF(t, root, "usr/bin/app", ldsotest.Object{Type: elf.ET_EXEC, Interp: loader, Needed: []string{"libx.so"}, RunPath: "/opt/$LIB/${PLATFORM}:$UNKNOWN/x"})
	writeELF(t, root, "opt/lib/x86_64-linux-gnu/x86_64/libx.so", ldsotest.Object{Soname: "libx.so"})
	c, err := Resolve(root, "/usr/bin/app")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Objects[len(c.Objects)-1].Path; got != "/opt/lib/x86_64-linux-gnu/x86_64/libx.so" {
		t.Errorf("$LIB/$PLATFORM led to %s", got)
	}
}

func TestLdSoConf(t *testing.T) {
	root := fakeHost(t)
	writeFile(t, root, "etc/ld.so.conf", []byte("include ld.so.conf.d/*.conf\n"), 0o644)
	writeFile(t, root, "etc/ld.so.conf.d/b.conf", []byte("# multiarch\n/lib/x86_64-linux-gnu\n"), 0o644)
	writeFile(t, root, "etc/ld.so.conf.d/a.conf", []byte("/opt/first, /opt/local=libc6 # comment\nhwcap 0 nosegneg\n"), 0o644)
	writeELF(t, root, "opt/local/libl.so.1", ldsotest.Object{Soname: "libl.so.1"})
	// The same name in a default folder after the conf ones is not taken.
	writeELF(t, root, "usr/lib/libl.so.1", ldsotest.Object{Soname: "libl.so.1"})
	writeELF(t, root, "usr/bin/app", exe("libl.so.1", "libc.so.6"))
	c, err := Resolve(root, "/usr/bin/app")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, o := range c.Objects {
		got[o.Path] = o.ThroughConf
	}
	if through, ok := got["/opt/local/libl.so.1"]; !ok || !through {
		t.Errorf("libl: want /opt/local/libl.so.1 through ld.so.conf, got %v", got)
	}
	if through, ok := got["/lib/x86_64-linux-gnu/libc.so.6"]; !ok || through {
		t.Errorf("libc is in a default folder that ld.so.conf names too: %v", got)
	}
	dirs, err := readConf(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/opt/first", "/opt/local", "/lib/x86_64-linux-gnu"}; !slices.Equal(dirs, want) {
		t.Errorf("ld.so.conf folders %v, want %v", dirs, want)
	}

	// -z nodeflib: neither the cache's folders nor the defaults.
	writeELF(t, root, "usr/bin/nodeflib", ldsotest.Object{Type: elf.ET_EXEC, Interp: loader, Needed: []string{"libc.so.6"}, Flags1: elf.DF_1_NODEFLIB})
	if _, err := Resolve(root, "/usr/bin/nodeflib"); !errors.Is(err, ErrNotFound) {
		t.Errorf("nodeflib: %v", err)
	}

	writeFile(t, root, "etc/ld.so.conf", []byte("include ld.so.conf\n"), 0o644)
	if _, err := Resolve(root, "/usr/bin/app"); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("an include cycle: %v", err)
	}
}

func TestOtherABIPassedOver(t *testing.T) {
	root := fakeHost(t)
	lib32 := ldsotest.Object{Class: elf.ELFCLASS32, Machine: elf.EM_386, Soname: "libw.so.1"}
	writeELF(t, root, "opt/rp/libw.so.1", lib32)
	writeELF(t, root, "usr/bin/app", ldsotest.Object{Type: elf.ET_EXEC, Interp: loader, Needed: []string{"libw.so.1"}, RPath: "/opt/rp"})
	_, err := Resolve(root, "/usr/bin/app")
	var miss *MissingError
	if !errors.As(err, &miss) || len(miss.Skipped) != 1 || !strings.Contains(err.Error(), "/opt/rp/libw.so.1 is ELFCLASS32 EM_386") {
		t.Fatalf("only a 32-bit libw: %v", err)
	}
	if !strings.Contains(err.Error(), "/usr/bin/app needs libw.so.1, which is in none of /opt/rp, /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib, /usr/lib") {
		t.Errorf("the error must name the binary, the library and where it looked: %v", err)
	}
	writeELF(t, root, "usr/lib/x86_64-linux-gnu/libw.so.1", ldsotest.Object{Soname: "libw.so.1"})
	c, err := Resolve(root, "/usr/bin/app")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Objects[len(c.Objects)-1].Path; got != "/lib/x86_64-linux-gnu/libw.so.1" {
		t.Errorf("libw from %s, want the 64-bit one", got)
	}

	writeELF(t, root, "usr/bin/app32", ldsotest.Object{Class: elf.ELFCLASS32, Machine: elf.EM_386, Type: elf.ET_EXEC, Static: true})
	if _, err := Resolve(root, "/usr/bin/app", "/usr/bin/app32"); !errors.Is(err, ErrMismatch) {
		t.Errorf("two ABIs in one closure: %v", err)
	}
}

func TestResolveRefusesBadArguments(t *testing.T) {
	root := fakeHost(t)
	writeFile(t, root, "usr/bin/script", []byte("#!/bin/sh -e\necho hi\n"), 0o755)
	writeFile(t, root, "usr/bin/text", []byte("hello\n"), 0o755)
	writeELF(t, root, "usr/bin/needs-missing", exe("libnope.so.3"))
	writeELF(t, root, "usr/bin/bad-interp", ldsotest.Object{Type: elf.ET_EXEC, Interp: "/lib/ld-nope.so"})
	writeELF(t, root, "usr/lib/obj.o", ldsotest.Object{Type: elf.ET_REL})
	for _, tc := range []struct {
		path  string
		is    error
		match string
	}{
		{"/usr/bin/script", ErrNotELF, "/usr/bin/script is a script for /bin/sh -e"},
		{"/usr/bin/text", ErrNotELF, "not an ELF file: /usr/bin/text"},
		{"/usr/bin/nothere", fs.ErrNotExist, "/usr/bin/nothere"},
		{"/usr/bin", ErrNotELF, "not a regular file"},
		{"/usr/bin/needs-missing", ErrNotFound, "/usr/bin/needs-missing needs libnope.so.3"},
		{"/usr/bin/bad-interp", fs.ErrNotExist, "/usr/bin/bad-interp: interpreter"},
		{"/usr/lib/obj.o", ErrNotELF, "not an executable"},
	} {
		_, err := Resolve(root, tc.path)
		if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.match) {
			t.Errorf("%s: %v; want %v and %q", tc.path, err, tc.is, tc.match)
		}
	}
	if _, err := Resolve(root, "usr/bin/app"); err == nil || !strings.Contains(err.Error(), "not an absolute path") {
		t.Errorf("a relative path: %v", err)
	}
}

func TestRealpath(t *testing.T) {
	root := fakeHost(t)
	real, links, err := Realpath(root, loader)
	if err != nil {
		t.Fatal(err)
	}
	wantLinks := []Link{{"/lib64", "usr/lib64"}, {"/usr/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"}, {"/lib", "usr/lib"}}
	if real != "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" || !slices.Equal(links, wantLinks) {
		t.Errorf("Realpath(%s) = %s, %v", loader, real, links)
	}
	// An absolute symlink and ".." stay inside the root.
	symlink(t, root, "/../../../etc", "usr/escape")
	// (/usr/escape/.. is /etc/.. is /, /bin leads to /usr/bin, .. to /usr)
	if real, _, err := Realpath(root, "/usr/escape/../bin/.."); err != nil || real != "/usr" {
		t.Errorf("escape: %s, %v", real, err)
	}
	symlink(t, root, "loop2", "usr/loop1")
	symlink(t, root, "loop1", "usr/loop2")
	if _, _, err := Realpath(root, "/usr/loop1"); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("loop: %v", err)
	}
	if _, _, err := Realpath(root, "/usr/lib/x86_64-linux-gnu/libc.so.6/x"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("through a file: %v", err)
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"ORIGIN": "/o", "LIB": "lib/t", "PLATFORM": ""}
	for _, tc := range []struct {
		in, out string
		ok      bool
	}{
		{"$ORIGIN/../lib", "/o/../lib", true},
		{"${ORIGIN}/x", "/o/x", true},
		{"/a/$LIB", "/a/lib/t", true},
		{"$ORIGINAL", "$ORIGINAL", true},
		{"/a/$PLATFORM", "", false},
		{"/a/${NOPE}/b", "/a/${NOPE}/b", true},
		{"/plain", "/plain", true},
	} {
		out, ok := expand(tc.in, vars)
		if out != tc.out || ok != tc.ok {
			t.Errorf("expand(%q) = %q, %v; want %q, %v", tc.in, out, ok, tc.out, tc.ok)
		}
	}
}
