package release

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

var (
	// ErrBadSignature means a signature by a keyring key did not verify:
	// the data was modified, or the key is expired or revoked.
	ErrBadSignature = errors.New("release: bad signature")
	// ErrUnknownKey is matched by *UnknownKeyError.
	ErrUnknownKey = errors.New("release: signed by unknown key")
	// ErrNotSigned means there is no signature at all.
	ErrNotSigned = errors.New("release: not signed")
)

// Signer identifies the key that made a good signature.
type Signer struct {
	KeyID       string // 16 upper-case hex digits, the signing (sub)key's id
	Fingerprint string // upper-case hex fingerprint of that same key
	Identity    string // primary user id of the key's owner, "" if it has none
}

// UnknownKeyError reports data whose signatures are all by keys missing from
// the keyring.
type UnknownKeyError struct {
	KeyIDs []string // issuers of the signatures, 16 upper-case hex digits each
}

func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("%s %s; pass --keyring with the archive's key (or install its archive keyring package)",
		ErrUnknownKey, strings.Join(e.KeyIDs, ", "))
}

// Is reports whether target is ErrUnknownKey.
func (e *UnknownKeyError) Is(target error) bool { return target == ErrUnknownKey }

// ReadKeyring reads OpenPGP public keys, binary (like the files in
// /usr/share/keyrings) or ASCII-armored, including several keyrings or
// armor blocks one after the other. Keys using algorithms go-crypto does
// not support are skipped as long as one key is readable.
func ReadKeyring(r io.Reader) (openpgp.EntityList, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read keyring: %w", err)
	}
	if !bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("-----BEGIN PGP")) {
		keys, err := openpgp.ReadKeyRing(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("read keyring: %w", err)
		}
		if len(keys) == 0 {
			return nil, errors.New("read keyring: no keys")
		}
		return keys, nil
	}
	// armor.Decode buffers ahead and would swallow the blocks after the
	// first, so each block is cut out and decoded on its own.
	var keys openpgp.EntityList
	for _, chunk := range bytes.SplitAfter(data, []byte("-----END PGP PUBLIC KEY BLOCK-----")) {
		if len(bytes.TrimSpace(chunk)) == 0 {
			continue
		}
		block, err := armor.Decode(bytes.NewReader(chunk))
		if err != nil {
			return nil, fmt.Errorf("read armored keyring: %w", err)
		}
		if block.Type != openpgp.PublicKeyType {
			return nil, fmt.Errorf("read armored keyring: block %q is not a public key block", block.Type)
		}
		el, err := openpgp.ReadKeyRing(block.Body)
		if err != nil {
			return nil, fmt.Errorf("read armored keyring: %w", err)
		}
		keys = append(keys, el...)
	}
	if len(keys) == 0 {
		return nil, errors.New("read armored keyring: no keys")
	}
	return keys, nil
}

var clearsignBegin = []byte("-----BEGIN PGP SIGNED MESSAGE-----")

// VerifyInRelease checks a clearsigned InRelease file against keyring at
// time now (the current time if zero) and returns the signed content, which
// is byte for byte the matching Release file, and who signed it.
//
// One good signature by a keyring key is enough; signatures by other keys
// are ignored, since archives sign with several keys so that keyrings old
// and new both work. Anything outside the signed block is refused rather
// than ignored, as apt does, so that no unsigned text can ride along.
func VerifyInRelease(data []byte, keyring openpgp.EntityList, now time.Time) (content []byte, signer *Signer, err error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if !bytes.HasPrefix(trimmed, clearsignBegin) {
		if bytes.Contains(data, clearsignBegin) {
			return nil, nil, fmt.Errorf("verify InRelease: text before the signed message: %w", ErrBadSignature)
		}
		return nil, nil, fmt.Errorf("verify InRelease: %w", ErrNotSigned)
	}
	block, rest := clearsign.Decode(trimmed)
	if block == nil {
		return nil, nil, fmt.Errorf("verify InRelease: malformed clearsigned message: %w", ErrBadSignature)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, nil, fmt.Errorf("verify InRelease: text after the signature: %w", ErrBadSignature)
	}
	sigs, err := io.ReadAll(block.ArmoredSignature.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("verify InRelease: read signature: %w: %w", ErrBadSignature, err)
	}
	signer, err = verify(block.Bytes, sigs, keyring, now)
	if err != nil {
		return nil, nil, fmt.Errorf("verify InRelease: %w", err)
	}
	// The line break before the signature armor belongs to the armor, so
	// the signed text lacks the Release file's final newline.
	content = block.Plaintext
	if len(content) > 0 {
		content = append(content, '\n')
	}
	return content, signer, nil
}

// VerifyDetached checks content (a Release file) against its detached
// signature sig (Release.gpg, armored or binary), with the same rules as
// VerifyInRelease.
func VerifyDetached(content, sig []byte, keyring openpgp.EntityList, now time.Time) (*Signer, error) {
	if len(bytes.TrimSpace(sig)) == 0 {
		return nil, fmt.Errorf("verify Release.gpg: empty signature: %w", ErrNotSigned)
	}
	if bytes.HasPrefix(bytes.TrimLeft(sig, " \t\r\n"), []byte("-----BEGIN PGP")) {
		block, err := armor.Decode(bytes.NewReader(sig))
		if err != nil {
			return nil, fmt.Errorf("verify Release.gpg: %w: %w", ErrBadSignature, err)
		}
		if block.Type != openpgp.SignatureType {
			return nil, fmt.Errorf("verify Release.gpg: armor block %q is not a signature: %w", block.Type, ErrNotSigned)
		}
		if sig, err = io.ReadAll(block.Body); err != nil {
			return nil, fmt.Errorf("verify Release.gpg: %w: %w", ErrBadSignature, err)
		}
	}
	signer, err := verify(content, sig, keyring, now)
	if err != nil {
		return nil, fmt.Errorf("verify Release.gpg: %w", err)
	}
	return signer, nil
}

// verify checks each signature packet in sigs on its own, because
// go-crypto's verifier gives up after the first signature by a known key
// and cannot list the unknown ones.
// clockSkew is how far in the future a signature may be dated.
const clockSkew = 10 * time.Minute

func verify(content, sigs []byte, keyring openpgp.EntityList, now time.Time) (*Signer, error) {
	if now.IsZero() {
		now = time.Now()
	}
	// A signature made a little after "now" is a clock difference between
	// the archive's signer and this machine (or a signature made within
	// the same second), not a forgery: accept up to clockSkew of it, as
	// gpgv does with a warning. Key and signature expiry move by as much.
	now = now.Add(clockSkew)
	config := &packet.Config{Time: func() time.Time { return now }}
	var (
		unknown  []string
		failure  error // first failure of a signature by a known key
		unusable error // first signature we could not even read
		count    int
	)
	packets := packet.NewOpaqueReader(bytes.NewReader(sigs))
	for {
		op, err := packets.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read signature packets: %w: %w", ErrBadSignature, err)
		}
		count++
		p, err := op.Parse()
		if err != nil {
			// Perhaps an algorithm we do not know; another signature may do.
			if unusable == nil {
				unusable = fmt.Errorf("parse signature %d: %w", count, err)
			}
			continue
		}
		sig, ok := p.(*packet.Signature)
		if !ok {
			return nil, fmt.Errorf("packet %d is a %T, not a signature: %w", count, p, ErrBadSignature)
		}
		if sig.IssuerKeyId == nil {
			if unusable == nil {
				unusable = fmt.Errorf("signature %d names no issuer key", count)
			}
			continue
		}
		id := fmt.Sprintf("%016X", *sig.IssuerKeyId)
		if len(keyring.KeysById(*sig.IssuerKeyId)) == 0 {
			unknown = append(unknown, id)
			continue
		}
		var one bytes.Buffer
		if err := op.Serialize(&one); err != nil {
			return nil, fmt.Errorf("copy signature %d: %w", count, err)
		}
		_, entity, err := openpgp.VerifyDetachedSignature(keyring, bytes.NewReader(content), &one, config)
		if err != nil {
			if failure == nil {
				failure = fmt.Errorf("signature by key %s: %w", id, err)
			}
			continue
		}
		return newSigner(entity, *sig.IssuerKeyId), nil
	}
	switch {
	case failure != nil:
		return nil, fmt.Errorf("%w: %w", ErrBadSignature, failure)
	case len(unknown) > 0:
		return nil, &UnknownKeyError{KeyIDs: unknown}
	case unusable != nil:
		return nil, fmt.Errorf("%w: %w", ErrBadSignature, unusable)
	}
	return nil, ErrNotSigned // no packets at all
}

func newSigner(e *openpgp.Entity, keyID uint64) *Signer {
	s := &Signer{KeyID: fmt.Sprintf("%016X", keyID)}
	if e == nil {
		return s
	}
	s.Fingerprint = fmt.Sprintf("%X", e.PrimaryKey.Fingerprint)
	for _, sub := range e.Subkeys {
		if sub.PublicKey.KeyId == keyID {
			s.Fingerprint = fmt.Sprintf("%X", sub.PublicKey.Fingerprint)
		}
	}
	if id := e.PrimaryIdentity(); id != nil {
		s.Identity = id.Name
	}
	return s
}
