// Package secret seals the secrets Herald stores (webhook tokens, signing
// keys, SSH private keys) with AES-256-GCM, so a copy of the database alone
// reveals none of them.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// prefix marks sealed values and their format version, so a future key
// rotation can tell old values from new.
const prefix = "v1:"

// KeyFile is the name of the generated key in the data folder.
const KeyFile = "secret.key"

// Box seals and opens values with one key.
type Box struct {
	aead cipher.AEAD
}

// NewBox takes a 32-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("the secret key must be 32 bytes, got %d: generate one with `openssl rand -base64 32`", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// ParseKey decodes HERALD_SECRET_KEY (standard or URL base64 of 32 bytes).
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("HERALD_SECRET_KEY decodes to %d bytes, want 32: generate one with `openssl rand -base64 32`", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("HERALD_SECRET_KEY is not base64: generate one with `openssl rand -base64 32`")
}

// LoadOrCreateKeyFile reads dataDir/secret.key, creating it with a random
// key (mode 0600) on first start. created tells whether it was made now.
func LoadOrCreateKeyFile(dataDir string) (key []byte, created bool, err error) {
	path := filepath.Join(dataDir, KeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := ParseKey(string(b))
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", path, err)
		}
		return key, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create data folder %s: %w", dataDir, err)
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, false, err
	}
	// O_EXCL: two processes starting at once must not write different keys.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadOrCreateKeyFile(dataDir)
	}
	if err != nil {
		return nil, false, fmt.Errorf("create %s: %w", path, err)
	}
	defer f.Close()
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		return nil, false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// Seal encrypts plaintext; the result is printable text for a TEXT column.
func (b *Box) Seal(plaintext []byte) (string, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := b.aead.Seal(nonce, nonce, plaintext, nil)
	return prefix + base64.StdEncoding.EncodeToString(out), nil
}

// SealString is Seal for strings.
func (b *Box) SealString(s string) (string, error) { return b.Seal([]byte(s)) }

// ErrWrongKey means a value cannot be opened with this key.
var ErrWrongKey = errors.New("stored secret cannot be decrypted: HERALD_SECRET_KEY (or secret.key) differs from the key it was sealed with")

// Open decrypts a value made by Seal.
func (b *Box) Open(sealed string) ([]byte, error) {
	if !strings.HasPrefix(sealed, prefix) {
		return nil, fmt.Errorf("stored secret has an unknown format")
	}
	raw, err := base64.StdEncoding.DecodeString(sealed[len(prefix):])
	if err != nil || len(raw) < b.aead.NonceSize() {
		return nil, fmt.Errorf("stored secret is corrupt")
	}
	n := b.aead.NonceSize()
	pt, err := b.aead.Open(nil, raw[:n], raw[n:], nil)
	if err != nil {
		return nil, ErrWrongKey
	}
	return pt, nil
}
