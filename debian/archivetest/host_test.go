package archivetest

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeDpkg points dpkgDir at a made-up database whose lists name files
// under a temporary root, and restores it when the test ends.
func fakeDpkg(t *testing.T, status string, info map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(dir, "db", "info"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		data = strings.ReplaceAll(data, "@ROOT@", root)
		if err := os.WriteFile(filepath.Join(dir, "db", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("status", strings.ReplaceAll(status, "@ARCH@", hostArch()))
	for name, data := range info {
		write(filepath.Join("info", strings.ReplaceAll(name, "@ARCH@", hostArch())), data)
	}
	old := dpkgDir
	dpkgDir = filepath.Join(dir, "db")
	t.Cleanup(func() { dpkgDir = old })
	return root
}

const fakeStatus = `Package: tool
Status: install ok installed
Priority: required
Essential: yes
Architecture: @ARCH@
Version: 2.0-1
Depends: libx (>= 1) | liby:any, awk
Description: a tool
 that does things

Package: liby
Status: install ok installed
Architecture: @ARCH@
Multi-Arch: same
Version: 1

Package: mawk
Status: install ok installed
Architecture: @ARCH@
Provides: awk
Version: 1

Package: libx
Status: deinstall ok config-files
Architecture: @ARCH@
Version: 1
`

func TestHostPackagesFake(t *testing.T) {
	root := fakeDpkg(t, fakeStatus, map[string]string{
		"tool.list":        "/.\n@ROOT@\n@ROOT@/bin\n@ROOT@/bin/tool\n@ROOT@/etc\n@ROOT@/etc/tool.conf\n@ROOT@/gone\n",
		"tool.postinst":    "#!/bin/sh\n",
		"tool.conffiles":   "@ROOT@/etc/tool.conf\n",
		"liby:@ARCH@.list": "/.\n@ROOT@/liby.so\n",
		"mawk.list":        "/.\n",
		"diversions":       "",
	})
	// Merged /usr: the package ships /bin as a directory, the host has a symlink.
	for _, d := range []string{"usr/bin", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("usr/bin", filepath.Join(root, "bin")))
	must(os.WriteFile(filepath.Join(root, "usr/bin/tool"), []byte("ELF"), 0o755))
	must(os.WriteFile(filepath.Join(root, "etc/tool.conf"), []byte("other package's"), 0o644))
	must(os.WriteFile(filepath.Join(root, "etc/tool.conf.distrib"), []byte("tool's own"), 0o644))
	must(os.WriteFile(filepath.Join(root, "liby.so"), []byte("lib"), 0o644))
	must(os.WriteFile(filepath.Join(dpkgDir, "diversions"),
		[]byte(root+"/etc/tool.conf\n"+root+"/etc/tool.conf.distrib\nother\n"), 0o644))

	pkgs, err := HostPackages("tool")
	if err != nil {
		t.Fatal(err)
	}
	p := pkgs[0]
	if p.Version != "2.0-1" || !p.Essential || p.Priority != "required" || p.Depends != "libx (>= 1) | liby:any, awk" {
		t.Errorf("fields not copied from status: %+v", p)
	}
	if p.Description != "a tool\n that does things" {
		t.Errorf("Description = %q", p.Description)
	}
	files := map[string]File{}
	for _, f := range p.Files {
		files[strings.TrimPrefix(f.Path, root)] = f
	}
	if f, ok := files["/bin"]; !ok || f.Mode&fs.ModeDir == 0 {
		t.Errorf("/bin repacked as %+v, want a directory as the package ships it", f)
	}
	if f := files["/bin/tool"]; string(f.Data) != "ELF" || f.Mode.Perm() != 0o755 {
		t.Errorf("/bin/tool repacked as %+v", f)
	}
	if f := files["/etc/tool.conf"]; string(f.Data) != "tool's own" {
		t.Errorf("diverted file repacked with %q, want the content at the diversion target", f.Data)
	}
	if _, ok := files["/gone"]; ok {
		t.Error("a path missing from the host was repacked")
	}
	var ctrl []string
	for _, c := range p.Control {
		ctrl = append(ctrl, c.Name)
	}
	if !slices.Equal(ctrl, []string{"postinst", "conffiles"}) {
		t.Errorf("control files %v, want postinst and conffiles", ctrl)
	}
	if _, err := BuildDeb(p); err != nil {
		t.Errorf("repacked package does not build: %v", err)
	}

	if pkgs, err := HostPackages("liby:" + hostArch()); err != nil || len(pkgs[0].Files) != 1 {
		t.Errorf("Multi-Arch: same package: %v, %v", pkgs, err)
	}
	for _, name := range []string{"libx", "absent", "liby:s390x-nope"} {
		if _, err := HostPackages(name); err == nil || !strings.Contains(err.Error(), "not installed") {
			t.Errorf("HostPackages(%q) error = %v, want not installed", name, err)
		}
	}
}

func TestMinimalSystemFake(t *testing.T) {
	fakeDpkg(t, `Package: dpkg
Status: install ok installed
Architecture: @ARCH@
Version: 1.21
Pre-Depends: libc6 (>= 2.34)
Depends: tar (>= 1.28-1)

Package: tar
Status: install ok installed
Architecture: @ARCH@
Version: 1.34
Pre-Depends: libc6

Package: libc6
Status: install ok installed
Architecture: @ARCH@
Multi-Arch: same
Version: 2.36

Package: unrelated
Status: install ok installed
Architecture: all
Version: 1
`, map[string]string{
		"dpkg.list": "/.\n", "tar.list": "/.\n", "libc6:@ARCH@.list": "/.\n", "unrelated.list": "/.\n",
	})
	pkgs, err := MinimalSystem()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pkgs {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"dpkg", "tar", "libc6"}) {
		t.Errorf("MinimalSystem = %v, want dpkg tar libc6", names)
	}

	fakeDpkg(t, "Package: dpkg\nStatus: install ok installed\nArchitecture: all\nDepends: missing-lib\n", map[string]string{"dpkg.list": "/.\n"})
	if _, err := MinimalSystem(); err == nil || !strings.Contains(err.Error(), "missing-lib") {
		t.Errorf("unsatisfied dependency: error %v, want one naming missing-lib", err)
	}
	fakeDpkg(t, "Package: dash\nStatus: install ok installed\nArchitecture: all\n", nil)
	if _, err := MinimalSystem(); err == nil || !strings.Contains(err.Error(), "dpkg") {
		t.Errorf("no dpkg: error %v, want one naming dpkg", err)
	}
}

func skipWithoutDpkgDB(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dpkgDir, "status")); err != nil {
		t.Skipf("no dpkg database on this host to repack from: %v", err)
	}
}

func TestHostPackagesDash(t *testing.T) {
	skipWithoutDpkgDB(t)
	dpkgDeb := lookTool(t, "dpkg-deb")
	pkgs, err := HostPackages("dash")
	if err != nil {
		t.Skipf("dash is not installed here: %v", err)
	}
	deb, err := BuildDeb(pkgs[0])
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dash.deb")
	if err := os.WriteFile(file, deb, 0o644); err != nil {
		t.Fatal(err)
	}
	if info := run(t, dpkgDeb, "--info", file); !strings.Contains(info, "Package: dash\n") {
		t.Errorf("dpkg-deb --info:\n%s", info)
	}
	contents := run(t, dpkgDeb, "--contents", file)
	if !strings.Contains(contents, " ./bin/dash\n") && !strings.Contains(contents, " ./usr/bin/dash\n") {
		t.Errorf("repacked dash lacks /bin/dash and /usr/bin/dash:\n%s", contents)
	}
}

// TestMinimalSystemHost repacks and serves the host's minimal system; the
// bootstrap's end-to-end test depends on this staying fast.
func TestMinimalSystemHost(t *testing.T) {
	skipWithoutDpkgDB(t)
	start := time.Now()
	pkgs, err := MinimalSystem()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Package{}
	var size int
	for _, p := range pkgs {
		byName[p.Name] = p
		for _, f := range p.Files {
			size += len(f.Data)
		}
	}
	for _, want := range []string{"dpkg", "dash", "coreutils", "tar", "libc6"} {
		if _, ok := byName[want]; !ok {
			t.Errorf("MinimalSystem lacks %s", want)
		}
	}
	if !byName["dpkg"].Essential || byName["dpkg"].Priority != "required" {
		t.Errorf("dpkg repacked as Essential %v Priority %q, want yes and required", byName["dpkg"].Essential, byName["dpkg"].Priority)
	}
	s := Serve(t, &Archive{Packages: pkgs})
	elapsed := time.Since(start)
	t.Logf("%d packages, %d MB of files, repacked and served in %v", len(pkgs), size>>20, elapsed)
	if elapsed > 10*time.Second && !raceEnabled {
		t.Errorf("repacking the minimal system took %v, want well under 10s", elapsed)
	}
	deb, ok := s.File(s.PoolPath("dpkg"))
	if !ok || !bytes.HasPrefix(deb, []byte("!<arch>\n")) {
		t.Errorf("dpkg is not served as a .deb at %s", s.PoolPath("dpkg"))
	}
}
