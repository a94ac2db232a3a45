// Package bootstrap builds an image from a Debian or Ubuntu archive: it plans
// (suite, mirror, keyring), fetches and verifies the indexes, selects the
// package set as debootstrap does, downloads into the store's cache, unpacks
// natively, registers the packages with dpkg, runs the maintainer scripts in
// the new root and commits it as the next version of an image.
package bootstrap

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"time"
)

// Variants are the package sets bootstrap knows, as debootstrap names them
// (plus mmdebstrap's essential and standard).
var Variants = []string{"essential", "minbase", "buildd", "default", "standard"}

// ErrUsage is wrapped by errors about the options themselves.
var ErrUsage = errors.New("bootstrap: invalid options")

// Options say what to build. Only Suite is required.
type Options struct {
	Suite      string
	Variant    string   // default "default"
	Include    []string // added to the seed set
	Exclude    []string // removed from the seed set (dependencies may bring them back, as in debootstrap)
	Components []string // default: the suite's
	Arch       string   // default: the host's
	Mirror     string   // default: from Config, then the host's apt sources
	Keyring    string   // default: the suite's keyring in KeyringDir
	Name       string   // default: Suite
	Jobs       int      // parallel downloads and unpacks; default 8
	// CustomizeHooks run with the staged root as their argument before commit.
	CustomizeHooks []string
	// Force builds a new version even when the newest one of Name was
	// built from the same inputs (see reuse.go).
	Force bool

	// Pockets names the pockets to read (see Pockets); nil means the
	// release and every pocket the suite has.
	Pockets []string
	// SecurityMirror is the mirror of the security pocket; default from
	// ConfigSecurityMirrors, then the host's apt sources, then (Ubuntu)
	// the release mirror.
	SecurityMirror string
	// IgnoreValidUntil accepts Release files past their Valid-Until date
	// (snapshot archives, frozen mirrors); signatures and hashes are still
	// checked, and the image's apt is told to do the same.
	IgnoreValidUntil bool

	// ConfigMirrors maps a distribution to the mirror the config names.
	ConfigMirrors map[string]string
	// ConfigSecurityMirrors maps a distribution to the security mirror
	// the config names.
	ConfigSecurityMirrors map[string]string
	// AptDir is the host's apt configuration folder (default /etc/apt).
	AptDir string
	// KeyringDir is the usual keyrings folder (default /usr/share/keyrings).
	KeyringDir string
	// DebootstrapDir holds debootstrap's suite scripts, the last place a
	// mirror is looked for (default /usr/share/debootstrap/scripts).
	DebootstrapDir string

	// Log receives plain progress lines; Progress, when set, a download bar.
	Log      io.Writer
	Progress func(totalBytes int64, count int) Bar
	// Client is the HTTP client; default one with keep-alive for Jobs connections.
	Client *http.Client
	// Now is the clock used for Valid-Until; default time.Now.
	Now func() time.Time
}

// Bar shows download progress.
type Bar interface {
	Add(bytes int64)
	Finish()
}

func (o *Options) setDefaults() error {
	if o.Suite == "" {
		return fmt.Errorf("%w: a suite is required (for example bookworm or noble)", ErrUsage)
	}
	if o.Variant == "" {
		o.Variant = "default"
	}
	ok := false
	for _, v := range Variants {
		ok = ok || v == o.Variant
	}
	if !ok {
		return fmt.Errorf("%w: --variant %q: choose one of %s", ErrUsage, o.Variant, strings.Join(Variants, ", "))
	}
	if o.Arch == "" {
		o.Arch = hostArch()
	}
	if !runnableArch(o.Arch) {
		return fmt.Errorf("%w: --arch %s: this %s machine cannot run its maintainer scripts (foreign architectures are not supported yet)", ErrUsage, o.Arch, hostArch())
	}
	if o.Name == "" {
		o.Name = o.Suite
	}
	if o.Jobs <= 0 {
		o.Jobs = 8
	}
	if o.Jobs > 64 {
		return fmt.Errorf("%w: --jobs %d: at most 64", ErrUsage, o.Jobs)
	}
	if o.AptDir == "" {
		o.AptDir = "/etc/apt"
	}
	if o.KeyringDir == "" {
		o.KeyringDir = "/usr/share/keyrings"
	}
	if o.DebootstrapDir == "" {
		o.DebootstrapDir = "/usr/share/debootstrap/scripts"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Client == nil {
		o.Client = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: o.Jobs + 2,
			IdleConnTimeout:     30 * time.Second,
			TLSHandshakeTimeout: 15 * time.Second,
			// The archives serve already-compressed files.
			DisableCompression:    true,
			ResponseHeaderTimeout: 60 * time.Second,
		}}
	}
	if err := checkPocketNames(o.Pockets); err != nil {
		return err
	}
	for _, p := range append(append([]string{}, o.Include...), o.Exclude...) {
		if p == "" || strings.ContainsAny(p, " /") {
			return fmt.Errorf("%w: package name %q in --include/--exclude", ErrUsage, p)
		}
	}
	return nil
}

// hostArch is the Debian name of the machine's architecture.
func hostArch() string {
	switch runtime.GOARCH {
	case "386":
		return "i386"
	case "arm":
		return "armhf"
	case "ppc64le":
		return "ppc64el"
	default:
		return runtime.GOARCH // amd64, arm64, riscv64, s390x, mips64le
	}
}

// runnableArch reports whether this machine runs the architecture's
// binaries natively, as configuring a root needs.
func runnableArch(arch string) bool {
	host := hostArch()
	switch {
	case arch == host:
		return true
	case host == "amd64" && arch == "i386", host == "arm64" && arch == "armhf":
		return true
	}
	return false
}
