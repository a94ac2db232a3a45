package archivetest

import (
	"bytes"
	"crypto"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Archive describes a served archive. Zero fields get test defaults.
type Archive struct {
	Origin, Label   string   // "jailmgr" when empty
	Suite, Codename string   // Suite "stable" when empty; Codename omitted when empty
	Components      []string // "main" plus those the packages name, when empty
	Architecture    string   // this host's when empty
	Packages        []Package

	Date       time.Time // now when zero; also the signature's creation time
	ValidUntil time.Time // no Valid-Until field when zero

	Signer      *openpgp.Entity // a fresh key from NewKey when nil
	NoInRelease bool            // serve only Release and Release.gpg
	Unsigned    bool            // serve only Release, no signature at all
}

// keyTime is the creation time of keys from NewKey: well in the past, so
// that archives dated in the past still verify.
var keyTime = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

// NewKey returns a fresh Ed25519 signing key with the user ID name. It is
// created at a fixed date in 2001 and does not expire.
func NewKey(name string) (*openpgp.Entity, error) {
	cfg := &packet.Config{
		Algorithm:   packet.PubKeyAlgoEdDSA,
		Curve:       packet.Curve25519,
		DefaultHash: crypto.SHA256,
		Time:        func() time.Time { return keyTime },
	}
	e, err := openpgp.NewEntity(name, "archivetest", "", cfg)
	if err != nil {
		return nil, fmt.Errorf("generate key %s: %w", name, err)
	}
	return e, nil
}

// PublicKeyring returns the public part of e as a binary keyring, like the
// files in /usr/share/keyrings.
func PublicKeyring(e *openpgp.Entity) ([]byte, error) {
	var buf bytes.Buffer
	if err := e.Serialize(&buf); err != nil {
		return nil, fmt.Errorf("serialize public key: %w", err)
	}
	return buf.Bytes(), nil
}

// PoolPath is where a package is served, relative to the archive root:
// pool/COMPONENT/<prefix>/NAME/NAME_VERSION_ARCH.deb, without the epoch.
func PoolPath(p Package, arch string) string {
	if arch == "" {
		arch = hostArch()
	}
	prefix := p.Name[:min(1, len(p.Name))]
	if strings.HasPrefix(p.Name, "lib") && len(p.Name) > 3 {
		prefix = p.Name[:4]
	}
	ver := orDefault(p.Version, "1.0")
	if _, after, ok := strings.Cut(ver, ":"); ok {
		ver = after
	}
	return fmt.Sprintf("pool/%s/%s/%s/%s_%s_%s.deb",
		orDefault(p.Component, "main"), prefix, p.Name, p.Name, ver, orDefault(p.Architecture, arch))
}

// withDefaults returns a copy of a with every default filled in.
func (a Archive) withDefaults() (Archive, error) {
	a.Origin = orDefault(a.Origin, "jailmgr")
	a.Label = orDefault(a.Label, "jailmgr")
	a.Suite = orDefault(a.Suite, "stable")
	a.Architecture = orDefault(a.Architecture, hostArch())
	if a.Date.IsZero() {
		a.Date = time.Now().UTC().Truncate(time.Second)
	}
	if len(a.Components) == 0 {
		comps := []string{"main"}
		for _, p := range a.Packages {
			if c := orDefault(p.Component, "main"); !slices.Contains(comps, c) {
				comps = append(comps, c)
			}
		}
		a.Components = comps
	} else {
		a.Components = slices.Clone(a.Components)
		for _, p := range a.Packages {
			if c := orDefault(p.Component, "main"); !slices.Contains(a.Components, c) {
				return a, fmt.Errorf("package %s: component %q is not among the archive's %v", p.Name, c, a.Components)
			}
		}
	}
	if a.Signer == nil {
		k, err := NewKey("archivetest " + a.Suite)
		if err != nil {
			return a, err
		}
		a.Signer = k
	}
	return a, nil
}

// build returns the served tree of a (which has its defaults) keyed by path
// relative to the archive root.
func build(a Archive) (map[string][]byte, error) {
	files := map[string][]byte{}
	indexes := map[string]*bytes.Buffer{}
	for _, c := range a.Components {
		indexes[c] = &bytes.Buffer{}
	}
	debs, err := buildDebs(a.Packages)
	if err != nil {
		return nil, err
	}
	for i, p := range a.Packages {
		deb := debs[i]
		pool := PoolPath(p, a.Architecture)
		if _, dup := files[pool]; dup {
			return nil, fmt.Errorf("package %s: %s is built twice", p.Name, pool)
		}
		files[pool] = deb
		md := md5.Sum(deb)
		sha := sha256.Sum256(deb)
		fields := append(controlFields(p, a.Architecture),
			field{"Filename", pool},
			field{"Size", strconv.Itoa(len(deb))},
			field{"MD5sum", hex.EncodeToString(md[:])},
			field{"SHA256", hex.EncodeToString(sha[:])},
		)
		idx := indexes[orDefault(p.Component, "main")]
		if idx.Len() > 0 {
			idx.WriteByte('\n')
		}
		writeFields(idx, fields)
	}

	dist := "dists/" + a.Suite + "/"
	var listed []string // paths relative to dist, in Release order
	for _, c := range a.Components {
		base := c + "/binary-" + a.Architecture + "/Packages"
		plain := indexes[c].Bytes()
		gz, err := compress("gz", plain)
		if err != nil {
			return nil, fmt.Errorf("compress %s: %w", base, err)
		}
		xzed, err := compress("xz", plain)
		if err != nil {
			return nil, fmt.Errorf("compress %s: %w", base, err)
		}
		files[dist+base] = plain
		files[dist+base+".gz"] = gz
		files[dist+base+".xz"] = xzed
		listed = append(listed, base, base+".gz", base+".xz")
	}

	release := releaseText(a, files, dist, listed)
	files[dist+"Release"] = release
	if a.Unsigned {
		return files, nil
	}
	sigCfg := &packet.Config{DefaultHash: crypto.SHA256, Time: func() time.Time { return a.Date }}
	var sig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, a.Signer, bytes.NewReader(release), sigCfg); err != nil {
		return nil, fmt.Errorf("sign Release: %w", err)
	}
	files[dist+"Release.gpg"] = sig.Bytes()
	if !a.NoInRelease {
		var in bytes.Buffer
		w, err := clearsign.Encode(&in, a.Signer.PrivateKey, sigCfg)
		if err != nil {
			return nil, fmt.Errorf("sign InRelease: %w", err)
		}
		if _, err := w.Write(release); err != nil {
			return nil, fmt.Errorf("sign InRelease: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("sign InRelease: %w", err)
		}
		files[dist+"InRelease"] = in.Bytes()
	}
	return files, nil
}

// buildDebs builds the packages in parallel: repacked host systems are tens
// of megabytes, and tests wait for them.
func buildDebs(pkgs []Package) ([][]byte, error) {
	debs := make([][]byte, len(pkgs))
	errs := make([]error, len(pkgs))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i := range pkgs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			debs[i], errs[i] = BuildDeb(pkgs[i])
			<-sem
		}()
	}
	wg.Wait()
	return debs, errors.Join(errs...)
}

// releaseText writes the Release file listing the index files under dist.
func releaseText(a Archive, files map[string][]byte, dist string, listed []string) []byte {
	var b bytes.Buffer
	fields := []field{
		{"Origin", a.Origin},
		{"Label", a.Label},
		{"Suite", a.Suite},
	}
	if a.Codename != "" {
		fields = append(fields, field{"Codename", a.Codename})
	}
	fields = append(fields, field{"Date", a.Date.UTC().Format(time.RFC1123)})
	if !a.ValidUntil.IsZero() {
		fields = append(fields, field{"Valid-Until", a.ValidUntil.UTC().Format(time.RFC1123)})
	}
	fields = append(fields,
		field{"Architectures", a.Architecture},
		field{"Components", strings.Join(a.Components, " ")},
		field{"Description", "archivetest fixture"},
	)
	writeFields(&b, fields)
	for _, algo := range []string{"MD5Sum", "SHA256"} {
		b.WriteString(algo + ":\n")
		for _, p := range listed {
			data := files[dist+p]
			var sum string
			if algo == "MD5Sum" {
				s := md5.Sum(data)
				sum = hex.EncodeToString(s[:])
			} else {
				s := sha256.Sum256(data)
				sum = hex.EncodeToString(s[:])
			}
			fmt.Fprintf(&b, " %s %16d %s\n", sum, len(data), p)
		}
	}
	return b.Bytes()
}
