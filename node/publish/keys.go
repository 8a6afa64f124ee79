package publish

import (
	"context"
	"crypto/rsa"
	"fmt"

	"mirrord/consensus/state"
	"mirrord/content"
	"mirrord/node/adminapi"
)

// MatchKey refuses a private key that does not belong to the app's
// public key: devices would fail every bundle with checksum errors.
func MatchKey(app adminapi.AppInfo, priv *rsa.PrivateKey) error {
	if app.PublicKey == "" {
		return fmt.Errorf("app %s has no public key, so its devices cannot decrypt: recreate it with --public-key (the .pub of this key), or publish without --key", app.ID)
	}
	pub, err := content.ParsePublicKey([]byte(app.PublicKey))
	if err != nil {
		return err
	}
	if !pub.Equal(&priv.PublicKey) {
		return fmt.Errorf("--key does not match app %s's public key (key_id %s): devices could not decrypt", app.ID, app.KeyID)
	}
	return nil
}

// ReusableSessionKey picks the session key for a publish with a private
// key: the one of the app's most recent release (highest created_at)
// encrypted with priv's key, opened with the public key as a device
// does, so that the unchanged files of the new release keep their
// encrypted bytes and CIDs. It returns nil (BuildBundle then draws a new
// key) when fresh is set, when no such release exists, or when that
// release's session key does not open; msg is the line telling the user
// which case it was.
func ReusableSessionKey(ctx context.Context, a Admin, app adminapi.AppInfo, priv *rsa.PrivateKey, fresh bool) (sk *content.SessionKey, msg string, err error) {
	if fresh {
		return nil, "session key: new random key (--fresh-session-key)", nil
	}
	keyID := content.KeyID(string(content.PublicKeyPEM(&priv.PublicKey)))
	rels, err := a.Releases(ctx, app.ID, false)
	if err != nil {
		return nil, "", fmt.Errorf("list releases of %s to reuse their session key (--fresh-session-key skips this): %w", app.ID, err)
	}
	latest := latestEncrypted(rels, keyID, app.KeyID)
	if latest == nil {
		return nil, fmt.Sprintf("session key: new random key (no earlier release of %s is encrypted with key_id %s)", app.ID, keyID), nil
	}
	k, err := content.OpenSessionKey(latest.SessionKey, &priv.PublicKey)
	if err != nil {
		return nil, fmt.Sprintf("session key: new random key (the session key of release %s does not open with this key: %v)", latest.Version, err), nil
	}
	return &k, fmt.Sprintf("session key: reused from release %s, so unchanged files keep their encrypted bytes (--fresh-session-key for a new one)", latest.Version), nil
}

// latestEncrypted is the most recent release encrypted with one of the
// key ids (ties broken by version), nil if none.
func latestEncrypted(rels []adminapi.ReleaseInfo, keyID, appKeyID string) *state.Release {
	var latest *state.Release
	for _, r := range rels {
		if r.Release == nil || r.SessionKey == "" || (r.KeyID != keyID && r.KeyID != appKeyID) {
			continue
		}
		if latest == nil || r.CreatedAt > latest.CreatedAt || (r.CreatedAt == latest.CreatedAt && r.Version > latest.Version) {
			latest = r.Release
		}
	}
	return latest
}
