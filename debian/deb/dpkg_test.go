package deb

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDpkgDeb reads packages built by the reference tool with each
// compression it offers.
func TestDpkgDeb(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skipf("dpkg-deb not installed: %v", err)
	}
	root := t.TempDir()
	files := map[string]struct {
		mode os.FileMode
		data string
	}{
		"DEBIAN/control":   {0o644, testControl},
		"DEBIAN/postinst":  {0o755, "#!/bin/sh\nset -e\necho configured\n"},
		"DEBIAN/conffiles": {0o644, "/etc/hello.conf\n"},
		"etc/hello.conf":   {0o644, "greeting = hi\n"},
		"usr/bin/hello":    {0o755, strings.Repeat("\x7fELF binary ", 1000)},
	}
	for name, f := range files {
		path := filepath.Join(root, "pkg", name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
		// WriteFile's mode is filtered by the umask.
		if err := os.Chmod(path, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("hello", filepath.Join(root, "pkg/usr/bin/hi")); err != nil {
		t.Fatal(err)
	}

	for _, z := range []string{"xz", "zstd", "gzip", "none"} {
		t.Run(z, func(t *testing.T) {
			out := filepath.Join(root, z+".deb")
			cmd := exec.Command("dpkg-deb", "--root-owner-group", "-Z"+z, "--build", filepath.Join(root, "pkg"), out)
			if msg, err := cmd.CombinedOutput(); err != nil {
				if z == "zstd" && bytes.Contains(msg, []byte("zstd")) {
					t.Skipf("this dpkg-deb cannot write zstd: %s", msg)
				}
				t.Fatalf("dpkg-deb -Z%s --build: %v: %s", z, err, msg)
			}
			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			c, entries, err := readDeb(f)
			if err != nil {
				t.Fatalf("read dpkg-deb -Z%s package: %v", z, err)
			}
			checkControl(t, "dpkg-deb -Z"+z, c)
			if _, ok := c.File("md5sums"); ok {
				t.Logf("dpkg-deb added md5sums")
			}
			got := map[string]dataEntry{}
			for _, e := range entries {
				got[e.name] = e
			}
			for _, name := range []string{"./etc/hello.conf", "./usr/bin/hello"} {
				if got[name].data != files[strings.TrimPrefix(name, "./")].data {
					t.Errorf("dpkg-deb -Z%s: %s has %d bytes, want %d", z, name, len(got[name].data), len(files[strings.TrimPrefix(name, "./")].data))
				}
			}
			if got["./usr/bin/hi"].link != "hello" {
				t.Errorf("dpkg-deb -Z%s: symlink ./usr/bin/hi -> %q, want hello", z, got["./usr/bin/hi"].link)
			}
		})
	}
}

// TestDpkgDebAcceptsTestPackages checks the packages the other tests build
// against dpkg-deb, so that they test the format dpkg really reads.
func TestDpkgDebAcceptsTestPackages(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skipf("dpkg-deb not installed: %v", err)
	}
	dir := t.TempDir()
	for _, sfx := range []string{".xz", ".zst", ".gz", ""} {
		path := filepath.Join(dir, "test"+sfx+".deb")
		if err := os.WriteFile(path, buildDeb(t, sfx, testControlFiles, testDataFiles), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("dpkg-deb", "--field", path, "Package").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "hello" {
			t.Errorf("dpkg-deb --field on test package %q: %v: %s", sfx, err, out)
		}
		out, err = exec.Command("dpkg-deb", "--contents", path).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "./usr/bin/hi -> hello") {
			t.Errorf("dpkg-deb --contents on test package %q: %v: %s", sfx, err, out)
		}
	}
}
