package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"mirrord/consensus"
	"mirrord/content"
)

// TokenFile is the admin token's file name inside the data directory.
const TokenFile = "admin.token"

// EnsureToken returns the admin token stored in dir/admin.token, creating
// a random one (mode 0600) on first start. created tells which.
func EnsureToken(dir string) (token string, created bool, err error) {
	p := filepath.Join(dir, TokenFile)
	b, err := os.ReadFile(p)
	if err == nil {
		t := strings.TrimSpace(string(b))
		if len(t) < 16 {
			return "", false, fmt.Errorf("node: admin token in %s is too short; delete the file to make a new one", p)
		}
		return t, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("node: read admin token: %w", err)
	}
	t, err := NewToken()
	if err != nil {
		return "", false, err
	}
	if err := content.WriteFileAtomic(p, []byte(t+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("node: write admin token: %w", err)
	}
	return t, true, nil
}

// WriteToken stores token as the node's admin token (a joined node
// keeps the cluster's token so operators on its machine can use it).
func WriteToken(dir, token string) error {
	if len(token) < 16 {
		return errors.New("node: admin token from the cluster is too short")
	}
	if err := content.WriteFileAtomic(filepath.Join(dir, TokenFile), []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("node: write admin token: %w", err)
	}
	return nil
}

// NewToken returns a random token: 32 bytes, in lowercase hex.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("node: random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// TokenDigest is the lowercase hex SHA-256 of a token, as stored in the
// cluster state.
func TokenDigest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Applier proposes consensus commands.
type Applier interface {
	Apply(ctx context.Context, cmd consensus.Command) (any, error)
}

// Overrides stores server-side device channel overrides through
// consensus; the device API uses it for old plugins' channel_self.
type Overrides struct {
	Cons Applier
}

// SetDeviceChannel pins a device to a channel.
func (o Overrides) SetDeviceChannel(ctx context.Context, app, device, channel string) error {
	_, err := o.Cons.Apply(ctx, consensus.DeviceSet{App: app, DeviceID: device, Channel: channel})
	return err
}

// UnsetDeviceChannel removes a device's override; none is not an error.
func (o Overrides) UnsetDeviceChannel(ctx context.Context, app, device string) error {
	_, err := o.Cons.Apply(ctx, consensus.DeviceUnset{App: app, DeviceID: device})
	var ce *consensus.Error
	if errors.As(err, &ce) && ce.Code == "not_found" {
		return nil
	}
	return err
}
