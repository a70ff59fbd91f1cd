package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadOrCreateKey returns the node's Ed25519 key stored at path (PEM,
// PKCS#8), creating the file with mode 0600 and a fresh key when it does
// not exist. The new file appears atomically: a crash never leaves a
// partial key, and of two processes racing to create it both end up with
// the key that won.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	key, err := readPrivateKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create key directory: %w", err)
	}
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate node key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode node key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".node-key-*")
	if err != nil {
		return nil, fmt.Errorf("create node key: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp already uses 0600; the Chmod states the requirement.
	werr := errors.Join(tmp.Chmod(0o600), pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der}), tmp.Sync())
	if err := errors.Join(werr, tmp.Close()); err != nil {
		return nil, fmt.Errorf("write node key %s: %w", path, err)
	}
	// Link, unlike Rename, fails when path exists: another process won.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readPrivateKey(path)
		}
		return nil, fmt.Errorf("install node key %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return key, nil
}

// LoadPublicKey reads the public key for Verify from path: either the
// node's private key file or a PEM "PUBLIC KEY" (PKIX) file. It never
// creates anything.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("read key %s: not a PEM file", path)
	}
	switch blk.Type {
	case "PRIVATE KEY":
		k, err := parsePrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("read key %s: %w", path, err)
		}
		return k.Public().(ed25519.PublicKey), nil
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("read key %s: %w", path, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("read key %s: not an Ed25519 key", path)
		}
		return pub, nil
	}
	return nil, fmt.Errorf("read key %s: unexpected PEM block %q", path, blk.Type)
}

func readPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read node key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("read node key %s: not a PEM PRIVATE KEY", path)
	}
	k, err := parsePrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("read node key %s: %w", path, err)
	}
	return k, nil
}

func parsePrivateKey(der []byte) (ed25519.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("not an Ed25519 key")
	}
	return key, nil
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
