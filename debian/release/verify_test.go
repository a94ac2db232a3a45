package release

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

var (
	keysOnce sync.Once
	testKeys []*openpgp.Entity
	keysErr  error
)

// keys returns three ed25519 test keys, made once per test binary.
func keys(t testing.TB) []*openpgp.Entity {
	t.Helper()
	keysOnce.Do(func() {
		for i := range 3 {
			cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, DefaultHash: crypto.SHA512}
			e, err := openpgp.NewEntity(fmt.Sprintf("Test Archive Key %d", i), "", fmt.Sprintf("archive-%d@test.invalid", i), cfg)
			if err != nil {
				keysErr = err
				return
			}
			testKeys = append(testKeys, e)
		}
	})
	if keysErr != nil {
		t.Fatalf("generate keys: %v", keysErr)
	}
	return testKeys
}

// publicKeyring turns entities into the binary keyring ReadKeyring reads,
// public parts only, as a keyring file would hold them.
func publicKeyring(t testing.TB, es ...*openpgp.Entity) (openpgp.EntityList, []byte) {
	t.Helper()
	var buf bytes.Buffer
	for _, e := range es {
		if err := e.Serialize(&buf); err != nil {
			t.Fatal(err)
		}
	}
	el, err := ReadKeyring(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("read back keyring: %v", err)
	}
	return el, buf.Bytes()
}

func clearsignWith(t testing.TB, content []byte, signers ...*openpgp.Entity) []byte {
	t.Helper()
	var priv []*packet.PrivateKey
	for _, e := range signers {
		priv = append(priv, e.PrivateKey)
	}
	var buf bytes.Buffer
	w, err := clearsign.EncodeMulti(&buf, priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	// gpg --clearsign leaves the final newline out of the signed text, where
	// go-crypto would sign it and add another; write what gpg would.
	if _, err := w.Write(bytes.TrimSuffix(content, []byte("\n"))); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// detachSign makes Release.gpg: one armored block holding a signature
// packet per signer, as archives write it.
func detachSign(t testing.TB, content []byte, armored bool, signers ...*openpgp.Entity) []byte {
	t.Helper()
	var raw bytes.Buffer
	for _, e := range signers {
		if err := openpgp.DetachSign(&raw, e, bytes.NewReader(content), nil); err != nil {
			t.Fatal(err)
		}
	}
	if !armored {
		return raw.Bytes()
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.SignatureType, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw.Bytes())
	w.Close()
	return buf.Bytes()
}

func keyID(e *openpgp.Entity) string { return fmt.Sprintf("%016X", e.PrimaryKey.KeyId) }

func TestVerifyInRelease(t *testing.T) {
	k := keys(t)
	content := []byte(sampleRelease)
	now := time.Now()

	signed := clearsignWith(t, content, k[0], k[1])
	for _, ring := range [][]*openpgp.Entity{{k[0]}, {k[1]}, {k[2], k[1]}, {k[0], k[1]}} {
		el, _ := publicKeyring(t, ring...)
		got, signer, err := VerifyInRelease(signed, el, now)
		if err != nil {
			t.Fatalf("keyring of %d keys: %v", len(ring), err)
		}
		if !bytes.Equal(got, content) {
			t.Errorf("content differs from the Release file:\n%q\nwant\n%q", got, content)
		}
		var want *openpgp.Entity
		for _, e := range ring {
			if e == k[0] || (e == k[1] && want == nil) {
				want = e
			}
		}
		if signer.KeyID != keyID(want) || signer.Fingerprint != fmt.Sprintf("%X", want.PrimaryKey.Fingerprint) ||
			!strings.HasPrefix(signer.Identity, "Test Archive Key") {
			t.Errorf("signer %+v, want key %s", signer, keyID(want))
		}
		if _, err := Parse(bytes.NewReader(got)); err != nil {
			t.Errorf("parse verified content: %v", err)
		}
	}

	// Dash-escaped lines ("- ...") and a file without a final newline.
	for _, c := range []string{"Description: x\n -- dashes\n- leading dash\n", "Suite: sid"} {
		el, _ := publicKeyring(t, k[0])
		got, _, err := VerifyInRelease(clearsignWith(t, []byte(c), k[0]), el, now)
		want := strings.TrimSuffix(c, "\n") + "\n"
		if err != nil || string(got) != want {
			t.Errorf("content %q: got %q, %v; want %q", c, got, err, want)
		}
	}
}

func TestVerifyInReleaseErrors(t *testing.T) {
	k := keys(t)
	content := []byte(sampleRelease)
	now := time.Now()
	known, _ := publicKeyring(t, k[0])
	signed := clearsignWith(t, content, k[0])
	twoSigned := clearsignWith(t, content, k[1], k[2])

	tampered := bytes.Replace(signed, []byte("Codename: bookworm"), []byte("Codename: trixie"), 1)
	if bytes.Equal(tampered, signed) {
		t.Fatal("test bug: tampering changed nothing")
	}
	tamperedHash := bytes.Replace(signed, []byte(" 8786420 main/binary-amd64/Packages.xz"), []byte(" 8786421 main/binary-amd64/Packages.xz"), 1)

	cases := []struct {
		name    string
		data    []byte
		keyring openpgp.EntityList
		target  error
	}{
		{"modified body", tampered, known, ErrBadSignature},
		{"modified size", tamperedHash, known, ErrBadSignature},
		{"added line", bytes.Replace(signed, []byte("Suite: stable\n"), []byte("Suite: stable\nNotAutomatic: yes\n"), 1), known, ErrBadSignature},
		{"unsigned Release", content, known, ErrNotSigned},
		{"empty", nil, known, ErrNotSigned},
		{"text before", append([]byte("Origin: Evil\n\n"), signed...), known, ErrBadSignature},
		{"text after", append(bytes.Clone(signed), "Origin: Evil\n"...), known, ErrBadSignature},
		{"signature cut", signed[:len(signed)-60], known, ErrBadSignature},
		{"unknown keys", twoSigned, known, ErrUnknownKey},
	}
	for _, c := range cases {
		got, signer, err := VerifyInRelease(c.data, c.keyring, now)
		t.Logf("%s: %v", c.name, err)
		if !errors.Is(err, c.target) {
			t.Errorf("%s: error %v, want one wrapping %v", c.name, err, c.target)
		}
		if got != nil || signer != nil {
			t.Errorf("%s: returned content or signer along with the error", c.name)
		}
	}

	_, _, err := VerifyInRelease(twoSigned, known, now)
	var uk *UnknownKeyError
	if !errors.As(err, &uk) {
		t.Fatalf("unknown keys: %v, want *UnknownKeyError", err)
	}
	if want := []string{keyID(k[1]), keyID(k[2])}; strings.Join(uk.KeyIDs, " ") != strings.Join(want, " ") {
		t.Errorf("UnknownKeyError.KeyIDs = %v, want %v", uk.KeyIDs, want)
	}
	for _, id := range uk.KeyIDs {
		if len(id) != 16 || strings.ToUpper(id) != id {
			t.Errorf("key id %q is not 16 upper-case hex digits", id)
		}
		if !strings.Contains(err.Error(), id) {
			t.Errorf("error %q does not name key %s", err, id)
		}
	}
	if !strings.Contains(err.Error(), "--keyring") {
		t.Errorf("error %q does not say to pass --keyring", err)
	}
}

// TestVerifyBadAndGood: a bad signature by one known key does not hide a
// good one by another, in either order.
func TestVerifyBadAndGood(t *testing.T) {
	k := keys(t)
	content := []byte(sampleRelease)
	other := []byte("Suite: something else\n")
	good := detachSign(t, content, false, k[0])
	bad := detachSign(t, other, false, k[1])
	el, _ := publicKeyring(t, k[0], k[1])
	for _, sig := range [][]byte{append(bytes.Clone(bad), good...), append(bytes.Clone(good), bad...)} {
		signer, err := VerifyDetached(content, sig, el, time.Now())
		if err != nil || signer.KeyID != keyID(k[0]) {
			t.Errorf("good and bad signature: signer %+v, err %v; want key %s", signer, err, keyID(k[0]))
		}
	}
	if _, err := VerifyDetached(content, bad, el, time.Now()); !errors.Is(err, ErrBadSignature) {
		t.Errorf("only a bad signature: %v, want ErrBadSignature", err)
	}
}

func TestVerifyDetached(t *testing.T) {
	k := keys(t)
	content := []byte(sampleRelease)
	now := time.Now()
	el, _ := publicKeyring(t, k[1])
	for _, armored := range []bool{true, false} {
		sig := detachSign(t, content, armored, k[0], k[1])
		signer, err := VerifyDetached(content, sig, el, now)
		if err != nil || signer.KeyID != keyID(k[1]) {
			t.Fatalf("armored %v: signer %+v, err %v", armored, signer, err)
		}
		if _, err := VerifyDetached(append(bytes.Clone(content), ' '), sig, el, now); !errors.Is(err, ErrBadSignature) {
			t.Errorf("armored %v, modified content: %v, want ErrBadSignature", armored, err)
		}
		only0, _ := publicKeyring(t, k[2])
		_, err = VerifyDetached(content, sig, only0, now)
		var uk *UnknownKeyError
		if !errors.As(err, &uk) || len(uk.KeyIDs) != 2 || uk.KeyIDs[0] != keyID(k[0]) || uk.KeyIDs[1] != keyID(k[1]) {
			t.Errorf("armored %v, unknown keys: %v, want UnknownKeyError naming %s and %s", armored, err, keyID(k[0]), keyID(k[1]))
		}
	}
	for _, sig := range [][]byte{nil, []byte("  \n")} {
		if _, err := VerifyDetached(content, sig, el, now); !errors.Is(err, ErrNotSigned) {
			t.Errorf("signature %q: %v, want ErrNotSigned", sig, err)
		}
	}
	if _, err := VerifyDetached(content, []byte("garbage that is not OpenPGP"), el, now); err == nil {
		t.Error("garbage signature: no error")
	}
	// A public key block where the signature should be.
	var pub bytes.Buffer
	w, _ := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	k[0].Serialize(w)
	w.Close()
	if _, err := VerifyDetached(content, pub.Bytes(), el, now); err == nil {
		t.Error("key block as signature: no error")
	}
}

// TestVerifyExpiredKey: a signature by a key past its lifetime is bad,
// judged at the time given, not the wall clock.
func TestVerifyExpiredKey(t *testing.T) {
	created := time.Now().Add(-48 * time.Hour)
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, KeyLifetimeSecs: 3600, Time: func() time.Time { return created }}
	e, err := openpgp.NewEntity("Expiring Key", "", "exp@test.invalid", cfg)
	if err != nil {
		t.Fatal(err)
	}
	content := []byte(sampleRelease)
	var sig bytes.Buffer
	signTime := created.Add(time.Minute)
	if err := openpgp.DetachSign(&sig, e, bytes.NewReader(content), &packet.Config{Time: func() time.Time { return signTime }}); err != nil {
		t.Fatal(err)
	}
	el, _ := publicKeyring(t, e)
	if _, err := VerifyDetached(content, sig.Bytes(), el, created.Add(30*time.Minute)); err != nil {
		t.Errorf("within the key's lifetime: %v", err)
	}
	_, err = VerifyDetached(content, sig.Bytes(), el, time.Now())
	t.Logf("expired key: %v", err)
	if !errors.Is(err, ErrBadSignature) {
		t.Errorf("after the key expired: %v, want ErrBadSignature", err)
	}
}

func TestReadKeyring(t *testing.T) {
	k := keys(t)
	_, bin := publicKeyring(t, k[0], k[1])
	el, err := ReadKeyring(bytes.NewReader(bin))
	if err != nil || len(el) != 2 {
		t.Fatalf("binary keyring: %d keys, %v; want 2", len(el), err)
	}
	// Two armored blocks back to back, as a .asc file may be concatenated.
	var asc bytes.Buffer
	for _, e := range k {
		w, err := armor.Encode(&asc, openpgp.PublicKeyType, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.Serialize(w)
		w.Close()
		asc.WriteString("\n")
	}
	el, err = ReadKeyring(bytes.NewReader(asc.Bytes()))
	if err != nil || len(el) != 3 {
		t.Fatalf("armored keyring: %d keys, %v; want 3", len(el), err)
	}
	for i, e := range el {
		if e.PrimaryKey.KeyId != k[i].PrimaryKey.KeyId {
			t.Errorf("armored key %d: id %X, want %X", i, e.PrimaryKey.KeyId, k[i].PrimaryKey.KeyId)
		}
	}
	for _, bad := range []string{"", "not a keyring", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\ngarbage\n-----END PGP PUBLIC KEY BLOCK-----\n"} {
		if el, err := ReadKeyring(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadKeyring(%q) = %d keys, want an error", bad, len(el))
		}
	}
}

func FuzzVerifyInRelease(f *testing.F) {
	k := keys(f)
	el, _ := publicKeyring(f, k[0])
	f.Add(clearsignWith(f, []byte(sampleRelease), k[0], k[1]))
	f.Add([]byte("-----BEGIN PGP SIGNED MESSAGE-----\n\nx\n-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		content, signer, err := VerifyInRelease(data, el, time.Now())
		if err == nil && (signer == nil || signer.KeyID != keyID(k[0])) {
			t.Fatalf("verified with signer %+v", signer)
		}
		if err != nil && content != nil {
			t.Fatal("content returned with an error")
		}
	})
}

// TestSignatureFromTheNearFuture: a signature dated a few seconds after the
// verifier's clock (skew, or the same second) is accepted.
func TestSignatureFromTheNearFuture(t *testing.T) {
	k := keys(t)
	el, _ := publicKeyring(t, k[0])
	signed := clearsignWith(t, []byte(sampleRelease), k[0])
	if _, _, err := VerifyInRelease(signed, el, time.Now().Add(-30*time.Second)); err != nil {
		t.Errorf("signature 30 s ahead of the clock: %v", err)
	}
}
