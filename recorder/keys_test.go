package recorder

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSigningKeyGeneratedOnce(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "var", "mcp-guard.db")
	k1, err := SigningKey("", db)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "var", DefaultSigningKeyName)
	st, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key mode = %v, want 0600", st.Mode().Perm())
	}
	pub, err := ReadPublicKey(filepath.Join(dir, "var", "recorder-signing.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pub, pubOf(k1)) {
		t.Error("the .pub file does not hold the key's public half")
	}
	k2, err := SigningKey("", db)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1, k2) {
		t.Error("a second start generated a new key instead of reading the first")
	}
}

func TestSigningKeyConfigured(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.key")
	if _, err := SigningKey(missing, filepath.Join(dir, "t.db")); err == nil {
		t.Fatal("a configured key file that does not exist was accepted")
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("a configured key file was generated; only the default one may be")
	}

	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := SigningKey(bad, ""); err == nil || !strings.Contains(err.Error(), "PEM") {
		t.Errorf("SigningKey(garbage) = %v, want a PEM error", err)
	}
}

// openssl reads the keys: the format is the standard one, not ours.
func TestSigningKeyOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "ops.key")
	out, err := exec.Command("openssl", "genpkey", "-algorithm", "ed25519", "-out", key).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl genpkey: %v\n%s", err, out)
	}
	k, err := SigningKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := exec.Command("openssl", "pkey", "-in", key, "-pubout").Output()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pub, pubOf(k)) {
		t.Error("openssl's public key differs from ours")
	}
	hexPub, err := ParsePublicKey([]byte(hex.EncodeToString(pub) + "\n"))
	if err != nil || !bytes.Equal(hexPub, pub) {
		t.Errorf("hex public key: %v", err)
	}

	// And openssl verifies a checkpoint signature.
	c := SignCheckpoint(k, 42, strings.Repeat("ab", 32))
	sig, _ := hex.DecodeString(c.Signature)
	files := map[string][]byte{"msg": CheckpointMessage(42, c.HeadHash), "sig": sig, "pub.pem": pubPEM}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem",
		"-rawin", "-in", "msg", "-sigfile", "sig")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl does not verify the checkpoint: %v\n%s", err, out)
	}
}
