package redisstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/redisstore"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// certs are a CA, a server certificate it signed for 127.0.0.1 and a
// client certificate it signed, made in-process, as PEM files in dir.
type certs struct {
	dir                           string
	caFile, certFile, keyFile     string // the server's
	clientCertFile, clientKeyFile string
	pool                          *x509.CertPool
	client                        tls.Certificate
}

func makeCerts(t *testing.T) *certs {
	t.Helper()
	c := &certs{dir: t.TempDir(), pool: x509.NewCertPool()}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	c.pool.AddCert(ca)
	c.caFile = c.write(t, "ca.pem", "CERTIFICATE", caDER)

	issue := func(name string, serial int64, usage x509.ExtKeyUsage, ips []net.IP) (certFile, keyFile string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(serial),
			Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips}, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		return c.write(t, name+".pem", "CERTIFICATE", der), c.write(t, name+"-key.pem", "EC PRIVATE KEY", keyDER)
	}
	c.certFile, c.keyFile = issue("server", 2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	c.clientCertFile, c.clientKeyFile = issue("client", 3, x509.ExtKeyUsageClientAuth, nil)
	c.client, err = tls.LoadX509KeyPair(c.clientCertFile, c.clientKeyFile)
	require.NoError(t, err)
	return c
}

func (c *certs) write(t *testing.T, name, kind string, der []byte) string {
	t.Helper()
	file := filepath.Join(c.dir, name)
	require.NoError(t, os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600))
	return file
}

// TestOpenTLS: a Redis that speaks only TLS and asks for a client
// certificate. Open over rediss:// with the CA and the client certificate
// in Options.TLS works; without the CA, or without the client
// certificate, it fails with a clear error.
func TestOpenTLS(t *testing.T) {
	t.Parallel()
	c := makeCerts(t)
	tlsPort := storetest.FreePort(t)
	// The plain port Start gives the server stays for storetest's own
	// checks; the store uses the TLS port alone.
	storetest.Start(t, "--tls-port", strconv.Itoa(tlsPort), "--tls-cert-file", c.certFile, "--tls-key-file", c.keyFile,
		"--tls-ca-cert-file", c.caFile, "--tls-auth-clients", "yes")
	url := "rediss://127.0.0.1:" + strconv.Itoa(tlsPort) + "/0"

	st := open(t, url, redisstore.Options{TLS: &tls.Config{RootCAs: c.pool, Certificates: []tls.Certificate{c.client}}})
	tok := token("tls", "v")
	ctx := context.Background()
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: tok, Record: rec, Expires: time.Now().Add(time.Hour), User: "p:tls"}))
	s, err := st.Lookup(ctx, format.KeyOf(tok))
	require.NoError(t, err)
	assert.True(t, s.Live())

	for name, cfg := range map[string]*tls.Config{
		"no CA":                 {Certificates: []tls.Certificate{c.client}},
		"no client certificate": {RootCAs: c.pool},
		"another server name":   {RootCAs: c.pool, Certificates: []tls.Certificate{c.client}, ServerName: "redis.example"},
	} {
		err := openFails(t, url, redisstore.Options{TLS: cfg, Timeout: 2 * time.Second})
		assert.ErrorIs(t, err, store.ErrUnavailable, name)
		t.Logf("%s: %v", name, err)
		if name != "no client certificate" {
			// (A refused client certificate reaches the client as the
			// server's TLS alert or, as often, as a closed connection.)
			assert.Contains(t, err.Error(), "TLS handshake failed", name)
		}
	}
	openFails(t, strings.Replace(url, "rediss", "redis", 1), redisstore.Options{Timeout: time.Second})
}

// TestOpenPlainURLAtAClusterNode: a single-Redis URL at a cluster node
// fails at Open, saying to add ?cluster=true.
func TestOpenPlainURLAtAClusterNode(t *testing.T) {
	t.Parallel()
	node := storetest.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes-"+strconv.Itoa(storetest.FreePort(t))+".conf")
	err := openFails(t, node.URL, redisstore.Options{})
	assert.ErrorIs(t, err, store.ErrMisconfigured)
	assert.Contains(t, err.Error(), "is a Redis Cluster node: add ?cluster=true")
}
