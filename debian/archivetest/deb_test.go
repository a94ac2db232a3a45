package archivetest

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// lookTool returns the path of a reference tool, skipping the test with a
// reason when the host lacks it.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed, so the output cannot be checked against it: %v", name, err)
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var longName = "usr/share/doc/hello/" + strings.Repeat("very-long-directory-name/", 5) + "file.txt"

func fixturePackage(compression string) Package {
	return Package{
		Name:         "hello",
		Version:      "1:2.10-3",
		Architecture: "amd64",
		Priority:     "optional",
		Section:      "devel",
		Depends:      "libc6 (>= 2.34)",
		Description:  "greets\n a longer description\n .\n with a paragraph",
		Compression:  compression,
		Files: []File{
			{Path: "/usr/bin/hello", Mode: 0o755, Data: []byte("#!/bin/sh\necho hello\n")},
			{Path: "/usr/bin/hi", Link: "hello"},
			{Path: "/usr/bin/hello2", HardLink: "/usr/bin/hello"},
			{Path: "/usr/bin/su-hello", Mode: 0o755 | fs.ModeSetuid, Data: []byte("x")},
			{Path: "/etc/hello.conf", Data: []byte("greeting=hi\n")},
			{Path: "/var/lib/hello", Mode: fs.ModeDir | 0o700, Uid: 1, Gid: 2},
			{Path: longName, Data: []byte("long\n")},
		},
		Control: []ControlFile{
			{Name: "postinst", Data: []byte("#!/bin/sh\nexit 0\n")},
			{Name: "conffiles", Data: []byte("/etc/hello.conf\n")},
		},
	}
}

func TestBuildDebDeterministic(t *testing.T) {
	a, err := BuildDeb(fixturePackage(""))
	if err != nil {
		t.Fatal(err)
	}
	b, err := BuildDeb(fixturePackage(""))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two builds of the same package differ")
	}
	if want := "!<arch>\ndebian-binary   "; !bytes.HasPrefix(a, []byte(want)) {
		t.Errorf("deb starts with %q, want %q", a[:min(len(a), 24)], want)
	}
	for _, member := range []string{"control.tar.xz  ", "data.tar.xz     "} {
		if !bytes.Contains(a, []byte(member)) {
			t.Errorf("deb has no ar member %q", member)
		}
	}
}

func TestBuildDebErrors(t *testing.T) {
	if _, err := BuildDeb(Package{}); err == nil {
		t.Error("BuildDeb of a package without name: no error")
	}
	if _, err := BuildDeb(Package{Name: "x", Compression: "lz4"}); err == nil {
		t.Error("BuildDeb with compression lz4: no error")
	}
	raw := []byte("not a deb")
	if got, err := BuildDeb(Package{Name: "x", RawData: raw}); err != nil || !bytes.Equal(got, raw) {
		t.Errorf("BuildDeb with RawData = %q, %v; want the raw bytes", got, err)
	}
}

// TestBuildDebDpkgDeb checks every compression against dpkg-deb itself:
// it must read the control fields, list the contents and extract them.
func TestBuildDebDpkgDeb(t *testing.T) {
	dpkgDeb := lookTool(t, "dpkg-deb")
	for _, comp := range []string{"xz", "zst", "gz", "none"} {
		t.Run(comp, func(t *testing.T) {
			deb, err := BuildDeb(fixturePackage(comp))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			file := filepath.Join(dir, "hello.deb")
			if err := os.WriteFile(file, deb, 0o644); err != nil {
				t.Fatal(err)
			}

			info := run(t, dpkgDeb, "--info", file)
			for _, want := range []string{"Package: hello", "Version: 1:2.10-3", "Depends: libc6 (>= 2.34)",
				"Description: greets", " a longer description", "postinst", "md5sums", "conffiles"} {
				if !strings.Contains(info, want) {
					t.Errorf("dpkg-deb --info lacks %q:\n%s", want, info)
				}
			}
			if got := strings.TrimSpace(run(t, dpkgDeb, "--field", file, "Installed-Size")); got == "" || got == "0" {
				t.Errorf("Installed-Size = %q, want a positive number", got)
			}

			contents := run(t, dpkgDeb, "--contents", file)
			for _, want := range []string{
				"drwxr-xr-x root/root         0 2024-01-01 00:00 ./\n",
				"./usr/bin/hello\n",
				"./usr/bin/hi -> hello\n",
				"./usr/bin/hello2 link to ./usr/bin/hello\n",
				"-rwsr-xr-x root/root         1 2024-01-01 00:00 ./usr/bin/su-hello\n",
				"drwx------ 1/2               0 2024-01-01 00:00 ./var/lib/hello/\n",
				"./" + longName + "\n",
			} {
				if !strings.Contains(contents, want) {
					t.Errorf("dpkg-deb --contents lacks %q:\n%s", want, contents)
				}
			}
			if strings.Index(contents, "./usr/\n") > strings.Index(contents, "./usr/bin/hello\n") {
				t.Errorf("parent directory listed after its files:\n%s", contents)
			}

			root := filepath.Join(dir, "root")
			run(t, dpkgDeb, "-x", file, root)
			got, err := os.ReadFile(filepath.Join(root, "usr/bin/hello2"))
			if err != nil || string(got) != "#!/bin/sh\necho hello\n" {
				t.Errorf("extracted hard link holds %q, %v", got, err)
			}
			if l, err := os.Readlink(filepath.Join(root, "usr/bin/hi")); err != nil || l != "hello" {
				t.Errorf("extracted symlink points to %q, %v; want hello", l, err)
			}

			ctrl := filepath.Join(dir, "DEBIAN")
			run(t, dpkgDeb, "-e", file, ctrl)
			sums, err := os.ReadFile(filepath.Join(ctrl, "md5sums"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(sums), "  usr/bin/hello\n") || strings.Contains(string(sums), "hi\n") {
				t.Errorf("md5sums should list regular files only:\n%s", sums)
			}
			if fi, err := os.Stat(filepath.Join(ctrl, "postinst")); err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("postinst mode %v, %v; want 0755", fi.Mode(), err)
			}
		})
	}
}

func TestBuildDebRawNames(t *testing.T) {
	dpkgDeb := lookTool(t, "dpkg-deb")
	deb, err := BuildDeb(Package{Name: "evil", Compression: "gz", Files: []File{
		{Path: "../../etc/evil", Raw: true, Data: []byte("x")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "evil.deb")
	if err := os.WriteFile(file, deb, 0o644); err != nil {
		t.Fatal(err)
	}
	// dpkg-deb lists names as written; it is the extractor that must refuse.
	if contents := run(t, dpkgDeb, "--contents", file); !strings.Contains(contents, " ../../etc/evil\n") {
		t.Errorf("raw name not kept verbatim:\n%s", contents)
	}
}
