package release

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"jailmgr/debian/compress"
	"jailmgr/debian/control"
	"jailmgr/debian/deb"
)

// The tests in this file download from real archives. No mirror is written
// here: Debian's comes from this host's apt sources, Ubuntu's from
// debootstrap's script for focal.

func skipUnlessE2E(t *testing.T) {
	t.Helper()
	if testing.Short() || os.Getenv("JAILMGR_E2E") == "" {
		t.Skip("downloads from a real archive; set JAILMGR_E2E=1 (and no -short) to run")
	}
}

// debianMirror returns the URI of the host's apt source that carries suite,
// from deb822 .sources files or the one-line sources.list format.
func debianMirror(t *testing.T, suite string) string {
	t.Helper()
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		r := control.NewReader(f, path)
		for {
			p, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				f.Close()
				t.Fatalf("read apt sources: %v", err)
			}
			if slices.Contains(strings.Fields(p.Get("Types")), "deb") && slices.Contains(strings.Fields(p.Get("Suites")), suite) {
				if uris := strings.Fields(p.Get("URIs")); len(uris) > 0 {
					f.Close()
					return strings.TrimSuffix(uris[0], "/")
				}
			}
		}
		f.Close()
	}
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	for _, path := range append([]string{"/etc/apt/sources.list"}, lists...) {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			fields := strings.Fields(line)
			if len(fields) > 0 && fields[0] == "deb" {
				fields = fields[1:]
				if len(fields) > 0 && strings.HasPrefix(fields[0], "[") {
					for len(fields) > 0 && !strings.HasSuffix(fields[0], "]") {
						fields = fields[1:]
					}
					fields = fields[1:]
				}
				if len(fields) >= 2 && fields[1] == suite {
					return strings.TrimSuffix(fields[0], "/")
				}
			}
		}
	}
	t.Skipf("no apt source for %s on this host", suite)
	return ""
}

// ubuntuMirror reads the amd64 default_mirror of debootstrap's focal script:
// the one in the "*)" branch, not the old-releases one.
func ubuntuMirror(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/usr/share/debootstrap/scripts/focal")
	if err != nil {
		t.Skipf("debootstrap's focal script: %v", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	inAmd64, branch := false, ""
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		switch {
		case strings.HasSuffix(line, ")") && strings.Contains(line, "amd64"):
			inAmd64 = true
		case strings.HasSuffix(line, ")"):
			branch = line
		case inAmd64 && branch == "*)" && strings.HasPrefix(line, "default_mirror "):
			return strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(line, "default_mirror")), "/")
		}
	}
	t.Skip("no amd64 default_mirror in debootstrap's focal script")
	return ""
}

func download(t *testing.T, url string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("download %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download %s: %s", url, resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("download %s: %v", url, err)
	}
	return data
}

func readKeyringFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("archive keyring: %v", err)
	}
	return data
}

func TestDebianBookwormE2E(t *testing.T) {
	skipUnlessE2E(t)
	mirror := debianMirror(t, "bookworm")
	ringData := readKeyringFile(t, "/usr/share/keyrings/debian-archive-keyring.gpg")
	keyring, err := ReadKeyring(bytes.NewReader(ringData))
	if err != nil {
		t.Fatalf("read debian-archive-keyring.gpg: %v", err)
	}
	base := mirror + "/dists/bookworm/"
	inRelease := download(t, base+"InRelease")
	releaseFile := download(t, base+"Release")
	releaseSig := download(t, base+"Release.gpg")
	now := time.Now()

	content, signer, err := VerifyInRelease(inRelease, keyring, now)
	if err != nil {
		t.Fatalf("verify bookworm InRelease with debian-archive-keyring.gpg (%d keys): %v", len(keyring), err)
	}
	t.Logf("InRelease signed by %s (%s, %s)", signer.KeyID, signer.Fingerprint, signer.Identity)
	if !bytes.Equal(content, releaseFile) {
		t.Errorf("InRelease content (%d bytes) differs from Release (%d bytes)", len(content), len(releaseFile))
	}
	if s, err := VerifyDetached(releaseFile, releaseSig, keyring, now); err != nil {
		t.Errorf("verify Release with Release.gpg: %v", err)
	} else {
		t.Logf("Release.gpg signed by %s", s.KeyID)
	}
	rel, err := Parse(bytes.NewReader(content))
	if err != nil {
		t.Fatalf("parse bookworm Release: %v", err)
	}
	if rel.Codename != "bookworm" || rel.Date.IsZero() || !slices.Contains(rel.Components, "main") {
		t.Errorf("bookworm Release: codename %q, date %v, components %v", rel.Codename, rel.Date, rel.Components)
	}
	if fh, ok := rel.Files["main/binary-amd64/Packages.xz"]; !ok || fh.Size == 0 {
		t.Errorf("no main/binary-amd64/Packages.xz in SHA256 (%d files)", len(rel.Files))
	}
	if err := rel.CheckValid(now); err != nil {
		t.Errorf("CheckValid: %v", err)
	}

	// Tampering and an unrelated keyring give the documented errors.
	tampered := bytes.Replace(inRelease, []byte("Codename: bookworm"), []byte("Codename: bookwurm"), 1)
	if _, _, err := VerifyInRelease(tampered, keyring, now); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered InRelease: %v, want ErrBadSignature", err)
	}
	other, _ := publicKeyring(t, keys(t)[0])
	_, _, err = VerifyInRelease(inRelease, other, now)
	var uk *UnknownKeyError
	if !errors.As(err, &uk) || len(uk.KeyIDs) < 2 {
		t.Errorf("InRelease against an unrelated key: %v, want UnknownKeyError naming Debian's 2-3 keys", err)
	} else {
		t.Logf("unknown-key error: %v", err)
	}

	if n := verifyEachKeyAlone(t, inRelease, keyring); n < 2 {
		t.Errorf("%d Debian keys verify bookworm's InRelease alone, want at least 2", n)
	}

	// The reference verifier agrees.
	if _, err := exec.LookPath("gpgv"); err == nil {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "keyring.gpg"), ringData, 0o644)
		os.WriteFile(filepath.Join(dir, "InRelease"), inRelease, 0o644)
		if ok, out := gpgv(t, dir, "InRelease"); !ok {
			t.Errorf("gpgv refuses the InRelease we accepted: %s", out)
		}
	}
}

// TestUbuntuFocalE2E checks the Ubuntu archive keys (older RSA keys with
// SHA-1 and SHA-512 self-signatures) with go-crypto: the keyring comes out
// of the ubuntu-keyring package, found through focal's Packages index.
func TestUbuntuFocalE2E(t *testing.T) {
	skipUnlessE2E(t)
	mirror := ubuntuMirror(t)
	inRelease := download(t, mirror+"/dists/focal/InRelease")
	const index = "main/binary-amd64/Packages.xz"
	packagesXZ := download(t, mirror+"/dists/focal/"+index)

	// Find ubuntu-keyring in the index.
	zr, err := compress.NewReader(index, bytes.NewReader(packagesXZ))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	pr := control.NewReader(zr, index)
	var pkg *control.Paragraph
	for {
		p, err := pr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", index, err)
		}
		if p.Get("Package") == "ubuntu-keyring" {
			pkg = p
			break
		}
	}
	if pkg == nil {
		t.Fatalf("no ubuntu-keyring in focal %s", index)
	}
	debData := download(t, mirror+"/"+pkg.Get("Filename"))
	if sum := sha256.Sum256(debData); hex.EncodeToString(sum[:]) != pkg.Get("SHA256") {
		t.Fatalf("ubuntu-keyring .deb: sha256 %x, index says %s", sum, pkg.Get("SHA256"))
	}

	// Take the archive keyring out of the package.
	d := deb.NewReader(bytes.NewReader(debData))
	defer d.Close()
	tr, err := d.Data()
	if err != nil {
		t.Fatalf("read ubuntu-keyring .deb: %v", err)
	}
	var ringData []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read ubuntu-keyring data.tar: %v", err)
		}
		if h.Name == "./usr/share/keyrings/ubuntu-archive-keyring.gpg" {
			if ringData, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ringData == nil {
		t.Fatal("ubuntu-keyring .deb has no ./usr/share/keyrings/ubuntu-archive-keyring.gpg")
	}
	keyring, err := ReadKeyring(bytes.NewReader(ringData))
	if err != nil {
		t.Fatalf("read ubuntu-archive-keyring.gpg: %v", err)
	}
	for _, e := range keyring {
		sig, _ := e.PrimarySelfSignature()
		hash := "none"
		if sig != nil {
			hash = sig.Hash.String()
		}
		t.Logf("key %016X, self-signature hash %s, %d subkeys", e.PrimaryKey.KeyId, hash, len(e.Subkeys))
	}

	content, signer, err := VerifyInRelease(inRelease, keyring, time.Now())
	if err != nil {
		t.Fatalf("verify focal InRelease with the ubuntu-keyring keys: %v", err)
	}
	t.Logf("focal InRelease signed by %s (%s)", signer.KeyID, signer.Identity)
	rel, err := Parse(bytes.NewReader(content))
	if err != nil {
		t.Fatalf("parse focal Release: %v", err)
	}
	// Close the loop: the index we used is the one the signature covers.
	fh, ok := rel.Files[index]
	sum := sha256.Sum256(packagesXZ)
	if !ok || fh.SHA256 != hex.EncodeToString(sum[:]) || fh.Size != int64(len(packagesXZ)) {
		t.Errorf("%s: downloaded %d bytes sha256 %x; Release says %+v", index, len(packagesXZ), sum, fh)
	}
	if _, err := strconv.Atoi(strings.Split(rel.Version, ".")[0]); err != nil || rel.Codename != "focal" {
		t.Errorf("focal Release: codename %q version %q", rel.Codename, rel.Version)
	}
	if n := verifyEachKeyAlone(t, inRelease, keyring); n < 2 {
		t.Errorf("%d Ubuntu keys verify focal's InRelease alone, want 2", n)
	}
}

// verifyEachKeyAlone checks that every keyring key that signed data
// verifies it without the others (a keyring holding only an old or only a
// new archive key must work), and returns how many did.
func verifyEachKeyAlone(t *testing.T, inRelease []byte, keyring openpgp.EntityList) int {
	t.Helper()
	verified := 0
	for _, e := range keyring {
		_, s, err := VerifyInRelease(inRelease, openpgp.EntityList{e}, time.Now())
		switch {
		case err == nil:
			verified++
			t.Logf("key %016X alone verifies: %s", e.PrimaryKey.KeyId, s.Identity)
		case !errors.Is(err, ErrUnknownKey):
			t.Errorf("key %016X alone: %v", e.PrimaryKey.KeyId, err)
		}
	}
	return verified
}
