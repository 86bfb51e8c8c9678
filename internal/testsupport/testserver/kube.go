package testserver

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Kube is a real kube-apiserver backed by a real etcd, both child processes.
// No kubelet or scheduler runs: tests create pods and set their status as a
// kubelet would. Two static tokens exist: AdminToken (system:masters) and
// ReaderToken (user "herd-reader", no permissions until a test binds some).
type Kube struct {
	APIServer   *Proc
	Etcd        *Proc
	Host        string // https://127.0.0.1:PORT
	AdminToken  string
	ReaderToken string
}

// ReaderUser is the user name ReaderToken authenticates as.
const ReaderUser = "herd-reader"

// StartKube runs etcdBin and apiserverBin on free loopback ports.
func StartKube(t testing.TB, apiserverBin, etcdBin string) *Kube {
	dir := t.TempDir()
	k := &Kube{AdminToken: "admin-" + randomHex(t), ReaderToken: "reader-" + randomHex(t)}

	etcd := StartEtcd(t, etcdBin)
	k.Etcd = etcd.Proc
	etcdURL := "http://" + etcd.Endpoint

	writeServiceAccountKeys(t, dir)
	tokens := fmt.Sprintf("%s,admin,admin,system:masters\n%s,%s,%s\n", k.AdminToken, k.ReaderToken, ReaderUser, ReaderUser)
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	k.Host = "https://127.0.0.1:" + strconv.Itoa(port)
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	k.APIServer = newProc(t, "kube-apiserver", apiserverBin, []string{
		"--etcd-servers=" + etcdURL,
		"--secure-port=" + strconv.Itoa(port), "--bind-address=127.0.0.1",
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(dir, "sa.key"),
		"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--disable-admission-plugins=ServiceAccount",
	}, dir, func(ctx context.Context) error { return httpOK(ctx, insecure, k.Host+"/readyz", k.AdminToken) })
	k.APIServer.Start()
	return k
}

func httpOK(ctx context.Context, c *http.Client, url, token string) error {
	if c == nil {
		c = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return errorf("%s answered %d", url, resp.StatusCode)
	}
	return nil
}

func writeServiceAccountKeys(t testing.TB, dir string) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("sa.key", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	write("sa.pub", "PUBLIC KEY", pub)
}

func randomHex(t testing.TB) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}
