package ldso

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"jailmgr/bootstrap/ldso/ldsotest"
)

// fakeHost is a folder standing for a merged-/usr Debian amd64 host: bin,
// lib, lib64 are symlinks into usr, the loader is reached from /lib64
// through an absolute symlink, libc needs the loader by its soname.
func fakeHost(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "usr/lib/x86_64-linux-gnu", "usr/lib64", "etc"} {
		mkdir(t, root, d)
	}
	symlink(t, root, "usr/bin", "bin")
	symlink(t, root, "usr/lib", "lib")
	symlink(t, root, "usr/lib64", "lib64")
	writeELF(t, root, "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", ldsotest.Object{Soname: "ld-linux-x86-64.so.2"})
	symlink(t, root, "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "usr/lib64/ld-linux-x86-64.so.2")
	writeELF(t, root, "usr/lib/x86_64-linux-gnu/libc.so.6", ldsotest.Object{Soname: "libc.so.6", Needed: []string{"ld-linux-x86-64.so.2"}})
	return root
}

const loader = "/lib64/ld-linux-x86-64.so.2"

// exe is an executable of the fake host's ABI that needs libs.
func exe(libs ...string) ldsotest.Object {
	return ldsotest.Object{Type: elf.ET_EXEC, Interp: loader, Needed: libs}
}

func writeELF(t *testing.T, root, name string, f ldsotest.Object) {
	t.Helper()
	writeFile(t, root, name, f.Bytes(), 0o755)
}

func writeFile(t *testing.T, root, name string, data []byte, mode os.FileMode) {
	t.Helper()
	mkdir(t, root, filepath.Dir(name))
	if err := os.WriteFile(filepath.Join(root, name), data, mode); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, root, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, name), 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, root, target, name string) {
	t.Helper()
	mkdir(t, root, filepath.Dir(name))
	if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
		t.Fatal(err)
	}
}

// The fake objects must read back through debug/elf as what they claim.
func TestFakeELFReadsBack(t *testing.T) {
	for _, f := range []ldsotest.Object{
		{Interp: loader, Needed: []string{"libc.so.6", "libm.so.6"}, Soname: "x", RPath: "$ORIGIN", Flags1: elf.DF_1_NODEFLIB},
		{Class: elf.ELFCLASS32, Machine: elf.EM_386, Needed: []string{"libc.so.6"}, RunPath: "/a:/b"},
		{Static: true, Type: elf.ET_EXEC},
	} {
		ef, err := elf.NewFile(bytes.NewReader(f.Bytes()))
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		d, err := readDynamic(ef)
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		if d.interp != f.Interp || !slices.Equal(d.needed, f.Needed) || d.soname != f.Soname || d.rpath != f.RPath ||
			d.runpath != f.RunPath || d.nodeflib != (f.Flags1&elf.DF_1_NODEFLIB != 0) {
			t.Errorf("%+v read back as %+v", f, d)
		}
	}
}
