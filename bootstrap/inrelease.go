package bootstrap

import (
	"context"
	"errors"
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp"

	"jailmgr/debian/release"
)

// fetchRelease downloads dists/DIST/InRelease from the mirror, or Release
// and Release.gpg where there is no InRelease, and checks the signature with
// keyring (named keyringName in errors). It returns the file as served (what
// the manifest's InRelease hash covers) and the signed Release text; the
// caller parses the text and decides about Valid-Until.
func fetchRelease(ctx context.Context, o *Options, mirror, dist string, keyring openpgp.EntityList, keyringName string) (raw, content []byte, err error) {
	now := o.Now()
	raw, err = fetchSmall(ctx, o.Client, mirror, dist+"/InRelease")
	switch {
	case err == nil:
		content, _, err = release.VerifyInRelease(raw, keyring, now)
		if err != nil {
			return nil, nil, fmt.Errorf("verify %s/%s/InRelease with %s: %w", mirror, dist, keyringName, err)
		}
		return raw, content, nil
	case errors.Is(err, ErrNotFound):
		fmt.Fprintf(o.Log, "no InRelease on the mirror; using Release and Release.gpg\n")
		if raw, err = fetchSmall(ctx, o.Client, mirror, dist+"/Release"); err != nil {
			return nil, nil, err
		}
		sig, err := fetchSmall(ctx, o.Client, mirror, dist+"/Release.gpg")
		if errors.Is(err, ErrNotFound) {
			return nil, nil, fmt.Errorf("verify %s/%s: %w: the mirror has neither InRelease nor Release.gpg (use a signed mirror)", mirror, dist, release.ErrNotSigned)
		}
		if err != nil {
			return nil, nil, err
		}
		if _, err := release.VerifyDetached(raw, sig, keyring, now); err != nil {
			return nil, nil, fmt.Errorf("verify %s/%s/Release with %s: %w", mirror, dist, keyringName, err)
		}
		return raw, raw, nil
	default:
		return nil, nil, err
	}
}
