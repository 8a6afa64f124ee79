package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"mirrord/consensus/state"
	"mirrord/content"
	"mirrord/node/adminapi"
)

// Admin is what publishing needs of the admin API.
type Admin interface {
	App(ctx context.Context, id string) (adminapi.AppInfo, error)
	Releases(ctx context.Context, app string, withManifest bool) ([]adminapi.ReleaseInfo, error)
	Upload(ctx context.Context, r io.Reader, size int64) (adminapi.ObjectInfo, error)
	CreateRelease(ctx context.Context, app string, req adminapi.CreateReleaseRequest) (state.Release, error)
}

// Progress is told the bytes and objects to upload, then the size of
// each object uploaded.
type Progress interface {
	Start(total int64, objects int)
	Add(n int64)
}

// Options say what to publish and how.
type Options struct {
	App, Version string
	// Path is a directory of web files or a zip.
	Path string
	// Skip lists files of a directory Path left out of the bundle.
	Skip []string
	// Key is the private key file mirrord encrypts with.
	Key string
	// SessionKey and Checksum come with a zip the Capgo CLI encrypted.
	SessionKey, Checksum string
	// FreshKey draws a new session key instead of reusing the latest
	// release's; Plain publishes unencrypted for an app with a key.
	FreshKey, Plain    bool
	MinNative, Channel string
	// Server names the admin API in messages ("" for this node).
	Server string
	// Progress, if set, follows the uploads.
	Progress Progress
}

// ErrOptions is matched (errors.Is) by the refusals of contradictory
// options: a mistake on the command line or in release.yaml.
var ErrOptions = errors.New("publish: contradictory options")

type optionsError string

func (e optionsError) Error() string        { return string(e) }
func (e optionsError) Is(target error) bool { return target == ErrOptions }

// Check refuses contradictory options.
func (o Options) Check() error {
	switch {
	case o.App == "" || o.Version == "":
		return optionsError("--app and --version are required")
	case (o.SessionKey == "") != (o.Checksum == ""):
		return optionsError("--session-key and --checksum go together (both printed by `capgo bundle encrypt`)")
	case o.SessionKey != "" && o.Key != "":
		return optionsError("use either --key (mirrord encrypts) or --session-key/--checksum (already encrypted), not both")
	case o.FreshKey && o.Key == "":
		return optionsError("--fresh-session-key goes with --key (it chooses the session key mirrord encrypts with)")
	}
	return nil
}

// Result is a published release and the bytes uploaded for it.
type Result struct {
	Release  state.Release
	Uploaded int64
	// EmptyFiles lists the empty files that left an encrypted release
	// without a manifest (content.ManifestRefusesEmpty); NoManifest is
	// the note saying so, also written to Publish's note. Both are empty
	// otherwise.
	EmptyFiles []string
	NoManifest string
}

// Publish builds the bundle of o (encrypting with o.Key, importing a
// Capgo-encrypted zip, or plain), uploads its objects and creates the
// release. Notes about the session key, and about empty files that keep
// an encrypted release from having a manifest, go to note.
func Publish(ctx context.Context, a Admin, o Options, note io.Writer) (Result, error) {
	app, err := a.App(ctx, o.App)
	if err != nil {
		if errors.Is(err, adminapi.ErrNotFound) {
			where := o.Server
			if where == "" {
				where = "this node"
			}
			return Result{}, fmt.Errorf("app %s does not exist on %s: create it first with `mirrord app create %s [--public-key PUB.pem]`", o.App, where, o.App)
		}
		return Result{}, err
	}
	zipData, err := readBundle(o)
	if err != nil {
		return Result{}, err
	}
	b, err := build(ctx, a, app, o, zipData, note)
	if err != nil {
		return Result{}, err
	}
	msg := content.EmptyFilesNote(b)
	if msg != "" {
		fmt.Fprintln(note, msg)
	}
	res, err := upload(ctx, a, o, b)
	if err != nil {
		return Result{}, err
	}
	res.EmptyFiles, res.NoManifest = b.EmptyFiles, msg
	return res, nil
}

// readBundle zips a directory Path, or reads a zip.
func readBundle(o Options) ([]byte, error) {
	info, err := os.Stat(o.Path)
	if err != nil {
		return nil, fmt.Errorf("bundle path: %w", err)
	}
	if !info.IsDir() {
		return os.ReadFile(o.Path)
	}
	if o.SessionKey != "" {
		return nil, optionsError("--session-key/--checksum need the encrypted zip made by the Capgo CLI, not a directory")
	}
	return content.ZipDirSkipping(o.Path, o.Skip...)
}

// build makes the bundle: imported, encrypted with o.Key, or plain.
func build(ctx context.Context, a Admin, app adminapi.AppInfo, o Options, zipData []byte, note io.Writer) (*content.Bundle, error) {
	lim := content.ZipLimits{}
	var b *content.Bundle
	var err error
	switch {
	case o.SessionKey != "":
		if app.PublicKey == "" {
			return nil, fmt.Errorf("app %s has no public key, so its devices cannot decrypt this bundle: recreate the app with --public-key", o.App)
		}
		pub, perr := content.ParsePublicKey([]byte(app.PublicKey))
		if perr != nil {
			return nil, perr
		}
		b, err = content.ImportEncrypted(zipData, o.SessionKey, o.Checksum, pub, lim)
	case o.Key != "":
		return encrypt(ctx, a, app, o, zipData, note)
	default:
		if app.PublicKey != "" && !o.Plain {
			return nil, fmt.Errorf("app %s has a public key, so its devices expect encrypted bundles: pass --key PRIVATE.pem (or --plain to publish unencrypted anyway)", o.App)
		}
		b, err = content.BuildBundle(zipData, nil, lim)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Path, err)
	}
	return b, nil
}

// encrypt builds the bundle encrypted with o.Key, with the session key
// ReusableSessionKey picks.
func encrypt(ctx context.Context, a Admin, app adminapi.AppInfo, o Options, zipData []byte, note io.Writer) (*content.Bundle, error) {
	pem, err := os.ReadFile(o.Key)
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	priv, err := content.ParsePrivateKey(pem)
	if err != nil {
		return nil, fmt.Errorf("--key %s: %w", o.Key, err)
	}
	if err := MatchKey(app, priv); err != nil {
		return nil, err
	}
	reuse, msg, err := ReusableSessionKey(ctx, a, app, priv, o.FreshKey)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(note, msg)
	var b *content.Bundle
	if reuse != nil {
		b, err = content.BuildBundleWithKey(zipData, priv, *reuse, content.ZipLimits{})
	} else {
		b, err = content.BuildBundle(zipData, priv, content.ZipLimits{})
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Path, err)
	}
	return b, nil
}

// upload stores the bundle's objects and creates the release.
func upload(ctx context.Context, a Admin, o Options, b *content.Bundle) (Result, error) {
	req := adminapi.CreateReleaseRequest{
		Version: o.Version, Checksum: b.Checksum, SessionKey: b.SessionKey, KeyID: b.KeyID,
		MinNative: o.MinNative, Channel: o.Channel,
	}
	total := int64(len(b.Zip))
	if o.Progress != nil {
		all := total
		for _, f := range b.Files {
			all += int64(len(f.Data))
		}
		o.Progress.Start(all, 1+len(b.Files))
	}
	zobj, err := uploadObject(ctx, a, o.Progress, b.Zip)
	if err != nil {
		return Result{}, fmt.Errorf("upload zip: %w", err)
	}
	req.ZipCID = zobj.CID
	for _, f := range b.Files {
		obj, err := uploadObject(ctx, a, o.Progress, f.Data)
		if err != nil {
			return Result{}, fmt.Errorf("upload %s: %w", f.Name, err)
		}
		total += int64(len(f.Data))
		req.Manifest = append(req.Manifest, adminapi.ReleaseFile{FileName: f.Name, FileHash: f.Hash, CID: obj.CID})
	}
	rel, err := a.CreateRelease(ctx, o.App, req)
	if err != nil {
		return Result{}, fmt.Errorf("create release %s of %s (%d manifest files, all uploaded): %w", o.Version, o.App, len(req.Manifest), err)
	}
	return Result{Release: rel, Uploaded: total}, nil
}

// uploadObject uploads data and checks that all of it was stored.
func uploadObject(ctx context.Context, a Admin, p Progress, data []byte) (adminapi.ObjectInfo, error) {
	o, err := a.Upload(ctx, bytes.NewReader(data), int64(len(data)))
	if err == nil && o.Size != int64(len(data)) {
		err = fmt.Errorf("server stored %d bytes of %d", o.Size, len(data))
	}
	if err == nil && p != nil {
		p.Add(int64(len(data)))
	}
	return o, err
}
