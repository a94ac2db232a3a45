package bootstrap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"jailmgr/debian/archivetest"
	"jailmgr/session"
)

// TestConfigureEssentialFirst bootstraps a small real system with a trap
// taken from a real archive: an Essential package whose postinst makes a file that the postinsts
//
//	of other packages use without declaring a dependency on it (Policy
//	lets them: Essential packages are never named). jammy's usrmerge
//
// needs debianutils' /etc/shells so, and failed under a configure order
// that left Essential packages to dpkg's hash order. Several users with
// names spread over that order make sure that at least one of them would
// come first.
func TestConfigureEssentialFirst(t *testing.T) {
	pkgs := minimalSystem(t)
	pkgs = append(pkgs, archivetest.Package{
		Name: "jm-shells-maker", Priority: "required", Essential: true,
		Files: []archivetest.File{{Path: "/usr/share/jm-shells/list", Data: []byte("/bin/sh\n")}},
		Control: []archivetest.ControlFile{
			{Name: "postinst", Data: []byte("#!/bin/sh\nset -e\n[ \"$1\" = configure ] && cp /usr/share/jm-shells/list /etc/jm-shells\nexit 0\n")},
		},
	})
	var users []string
	for _, n := range []string{"a", "e", "h", "k", "m", "q", "t", "z", "a2", "zz"} {
		name := "jm-shells-user-" + n
		users = append(users, name)
		pkgs = append(pkgs, archivetest.Package{
			Name: name, Priority: "required",
			Files: []archivetest.File{{Path: "/usr/share/doc/" + name + "/README", Data: []byte(name + "\n")}},
			Control: []archivetest.ControlFile{
				{Name: "postinst", Data: []byte("#!/bin/sh\nset -e\nif [ ! -f /etc/jm-shells ]; then echo \"" + name + ": /etc/jm-shells is missing\" >&2; exit 1; fi\n")},
			},
		})
	}
	root := bootstrapWith(t, pkgs)
	audit(t, root)
	info := filepath.Join(root, "var/lib/dpkg/info")
	for _, u := range users {
		if _, err := os.Stat(filepath.Join(info, u+".list")); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	if data, err := os.ReadFile(filepath.Join(root, "etc/jm-shells")); err != nil || !strings.Contains(string(data), "/bin/sh") {
		t.Errorf("/etc/jm-shells = %q, %v", data, err)
	}
}

// TestControlFilesAsDpkgKeepsThem: a package whose md5sums member is empty
// (focal's g++ and others) is registered with an empty md5sums file, as
// dpkg does (a missing one makes dpkg --audit report the package), and
// control files keep the times they have in control.tar.
func TestControlFilesAsDpkgKeepsThem(t *testing.T) {
	pkgs := append(minimalSystem(t), archivetest.Package{
		Name: "jm-empty-sums", Priority: "required",
		Files: []archivetest.File{{Path: "/usr/share/jm-empty-sums/data", Data: []byte("x\n")}},
		Control: []archivetest.ControlFile{
			{Name: "md5sums", Data: []byte{}},
			{Name: "postinst", Data: []byte("#!/bin/sh\nexit 0\n")},
		},
	})
	root := bootstrapWith(t, pkgs)
	audit(t, root)
	info := filepath.Join(root, "var/lib/dpkg/info")
	if fi, err := os.Stat(filepath.Join(info, "jm-empty-sums.md5sums")); err != nil || fi.Size() != 0 {
		t.Errorf("info/jm-empty-sums.md5sums: %v (want the package's own empty file)", err)
	}
	// archivetest dates every tar entry 2024-01-01.
	want := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range []string{"jm-empty-sums.md5sums", "jm-empty-sums.postinst"} {
		fi, err := os.Stat(filepath.Join(info, f))
		if err != nil {
			t.Errorf("info/%s: %v", f, err)
			continue
		}
		if !fi.ModTime().Equal(want) {
			t.Errorf("info/%s has mtime %s, want %s from control.tar", f, fi.ModTime().UTC(), want)
		}
	}
}

// bootstrapWith bootstraps pkgs from a loopback archive and returns the
// committed root.
func bootstrapWith(t *testing.T, pkgs []archivetest.Package) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("a full bootstrap chroots and sets file ownership: run as root (CI does)")
	}
	srv := archivetest.Serve(t, &archivetest.Archive{Suite: "bookworm", Codename: "bookworm", Packages: pkgs})
	o := options(srv)
	res, err := runBootstrap(t, o, openStore(t))
	if err != nil {
		t.Fatalf("bootstrap: %v\nlog:\n%s", err, o.Log)
	}
	return res.Image.RootFS()
}

// audit fails the test unless dpkg --audit in root is silent.
func audit(t *testing.T, root string) {
	t.Helper()
	cmd, err := session.Chroot(root, "dpkg", "--audit")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if out, err := cmd.CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("dpkg --audit in the image: %v\n%s", err, out)
	}
}
