package recorder

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Checkpoint is the body of a checkpoint record: an ed25519 signature over
// the seq and hash of the record just before it. Key and signature are
// hex. A valid checkpoint vouches for every record up to UptoSeq, since
// each hash covers the one before it.
type Checkpoint struct {
	UptoSeq   int64  `json:"upto_seq"`
	HeadHash  string `json:"head_hash"`
	PublicKey string `json:"public_key"`
	Signature string `json:"signature"`
}

// CheckpointMessage is the text a checkpoint signs.
func CheckpointMessage(seq int64, hash string) []byte {
	return []byte("mcp-guard/checkpoint/v1\n" + strconv.FormatInt(seq, 10) + "\n" + hash)
}

// SignCheckpoint signs the chain head (seq, hash) with key.
func SignCheckpoint(key ed25519.PrivateKey, seq int64, hash string) Checkpoint {
	pub := key.Public().(ed25519.PublicKey)
	return Checkpoint{
		UptoSeq:   seq,
		HeadHash:  hash,
		PublicKey: hex.EncodeToString(pub),
		Signature: hex.EncodeToString(ed25519.Sign(key, CheckpointMessage(seq, hash))),
	}
}

// ParseCheckpoint decodes a checkpoint body strictly.
func ParseCheckpoint(body []byte) (Checkpoint, error) {
	var c Checkpoint
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Checkpoint{}, fmt.Errorf("recorder: checkpoint body: %w", err)
	}
	return c, nil
}

// Key returns the public key the checkpoint names.
func (c Checkpoint) Key() (ed25519.PublicKey, error) {
	b, err := hex.DecodeString(c.PublicKey)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("recorder: checkpoint public key is not a hex ed25519 key")
	}
	return ed25519.PublicKey(b), nil
}

// Check reports whether the signature is valid for pub.
func (c Checkpoint) Check(pub ed25519.PublicKey) bool {
	sig, err := hex.DecodeString(c.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize {
		return false
	}
	return ed25519.Verify(pub, CheckpointMessage(c.UptoSeq, c.HeadHash), sig)
}

// DefaultSigningKeyName is the file the signing key is generated in, next
// to the database, when recorder.signing_key_file is empty.
const DefaultSigningKeyName = "recorder-signing.key"

// SigningKeyPath returns the signing key file: configured when set,
// otherwise DefaultSigningKeyName next to the database at dbPath.
func SigningKeyPath(configured, dbPath string) string {
	if configured != "" {
		return configured
	}
	return filepath.Join(filepath.Dir(dbPath), DefaultSigningKeyName)
}

// PublicKeyPath returns where the public key of the signing key at path
// is written: path with ".key" replaced by ".pub", or ".pub" appended.
func PublicKeyPath(path string) string {
	return strings.TrimSuffix(path, ".key") + ".pub"
}

// SigningKey returns the key that signs checkpoints. A configured file
// must exist; the default file is generated on first use, mode 0600, with
// its public key beside it. Keys are PEM: PKCS #8 "PRIVATE KEY" and
// PKIX "PUBLIC KEY", as openssl writes them.
func SigningKey(configured, dbPath string) (ed25519.PrivateKey, error) {
	path := SigningKeyPath(configured, dbPath)
	if configured != "" {
		return LoadSigningKey(path)
	}
	return loadOrCreateSigningKey(path)
}

// LoadSigningKey reads a PEM PKCS #8 ed25519 private key.
func LoadSigningKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("recorder: read signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("recorder: signing key %s is not a PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("recorder: signing key %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("recorder: signing key %s is not an ed25519 key", path)
	}
	return key, nil
}

func loadOrCreateSigningKey(path string) (ed25519.PrivateKey, error) {
	key, err := LoadSigningKey(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("recorder: generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("recorder: encode signing key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("recorder: create key directory: %w", err)
	}
	// O_EXCL: when two processes start at once, the loser reads the
	// winner's key instead of replacing it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadSigningKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("recorder: create signing key: %w", err)
	}
	err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("recorder: write signing key: %w", err)
	}
	if err := WritePublicKey(PublicKeyPath(path), key.Public().(ed25519.PublicKey)); err != nil {
		return nil, err
	}
	return key, nil
}

// WritePublicKey writes pub as a PEM PKIX "PUBLIC KEY", mode 0644.
func WritePublicKey(path string, pub ed25519.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("recorder: encode public key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("recorder: write public key: %w", err)
	}
	return nil
}

// ReadPublicKey reads a public key for verification: a PEM PKIX "PUBLIC
// KEY", or the 64 hex digits checkpoints carry.
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("recorder: read public key: %w", err)
	}
	return ParsePublicKey(data)
}

// ParsePublicKey parses what ReadPublicKey reads.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("recorder: public key: PEM block is %q, not PUBLIC KEY", block.Type)
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("recorder: public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, errors.New("recorder: public key is not an ed25519 key")
		}
		return pub, nil
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("recorder: public key is neither PEM nor 64 hex digits")
	}
	return ed25519.PublicKey(b), nil
}
