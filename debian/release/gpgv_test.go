package release

import (
	"bytes"
	"crypto"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// gpgv runs the reference verifier on files in dir and reports whether it
// accepted them.
func gpgv(t *testing.T, dir string, args ...string) (bool, string) {
	t.Helper()
	cmd := exec.Command("gpgv", append([]string{"--keyring", filepath.Join(dir, "keyring.gpg")}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GNUPGHOME="+dir, "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run gpgv: %v", err)
	}
	return err == nil, string(out)
}

// TestGpgv checks that what go-crypto signs, gpgv accepts, and that gpgv
// and we agree on tampered and unknown-key signatures. An RSA key is used
// besides ed25519 because archive keys are RSA.
func TestGpgv(t *testing.T) {
	if _, err := exec.LookPath("gpgv"); err != nil {
		t.Skipf("gpgv not installed: %v", err)
	}
	rsa, err := openpgp.NewEntity("Test RSA Archive Key", "", "rsa@test.invalid",
		&packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 2048, DefaultHash: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	k := keys(t)
	content := []byte(sampleRelease)
	now := time.Now()
	for _, signer := range []*openpgp.Entity{rsa, k[0]} {
		dir := t.TempDir()
		el, ring := publicKeyring(t, signer)
		files := map[string][]byte{
			"keyring.gpg":       ring,
			"InRelease":         clearsignWith(t, content, signer),
			"Release":           content,
			"Release.gpg":       detachSign(t, content, true, signer),
			"Tampered":          bytes.Replace(clearsignWith(t, content, signer), []byte("stable"), []byte("stab1e"), 1),
			"InRelease.unknown": clearsignWith(t, content, k[1]),
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		algo := signer.PrimaryKey.PubKeyAlgo

		ok, out := gpgv(t, dir, "InRelease")
		_, _, err := VerifyInRelease(files["InRelease"], el, now)
		if !ok || err != nil {
			t.Errorf("algo %v InRelease: gpgv ok=%v (%s), ours: %v; both must accept", algo, ok, out, err)
		}
		ok, out = gpgv(t, dir, "Release.gpg", "Release")
		_, err = VerifyDetached(content, files["Release.gpg"], el, now)
		if !ok || err != nil {
			t.Errorf("algo %v Release.gpg: gpgv ok=%v (%s), ours: %v; both must accept", algo, ok, out, err)
		}
		ok, out = gpgv(t, dir, "Tampered")
		_, _, err = VerifyInRelease(files["Tampered"], el, now)
		if ok || !errors.Is(err, ErrBadSignature) {
			t.Errorf("algo %v tampered: gpgv ok=%v (%s), ours: %v; both must refuse", algo, ok, out, err)
		}
		ok, out = gpgv(t, dir, "InRelease.unknown")
		_, _, err = VerifyInRelease(files["InRelease.unknown"], el, now)
		if ok || !errors.Is(err, ErrUnknownKey) {
			t.Errorf("algo %v unknown key: gpgv ok=%v (%s), ours: %v; both must refuse", algo, ok, out, err)
		}
	}
}
