package redisstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/gomodule/redigo/redis"

	"github.com/sessiongate/sessiongate/internal/backend"
)

// redisError is an error of the Redis store. Its text is ours alone: a
// short reason such as "timeout" or "READONLY", never a server's reply
// text, a command's arguments, a key or a URL, all of which may echo
// secrets, user ids or store keys. It wraps the sentinels it stands for.
type redisError struct {
	msg  string
	kind []error
}

func (e *redisError) Error() string   { return e.msg }
func (e *redisError) Unwrap() []error { return e.kind }

// unavailable returns the error a store operation reports for err: err
// itself when it is already one of ours, else ErrUnavailable with err's
// reason (and a context's error, so that callers can tell a deadline).
func unavailable(err error) error {
	var own *redisError
	if errors.As(err, &own) {
		return own
	}
	kind := []error{backend.ErrUnavailable}
	if ctxErr := contextError(err); ctxErr != nil {
		kind = append(kind, ctxErr)
	}
	return &redisError{msg: "store: unavailable: redis: " + reasonOf(err), kind: kind}
}

// misconfigured returns an error wrapping ErrUnavailable and
// ErrMisconfigured that says why.
func misconfigured(reason string) error {
	return &redisError{msg: "store: unavailable: redis: " + reason, kind: []error{backend.ErrUnavailable, backend.ErrMisconfigured}}
}

func contextError(err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return context.Canceled
	}
	return nil
}

// reasonOf names err's class in a few words of ours.
func reasonOf(err error) string {
	var (
		reply   redis.Error
		netErr  net.Error
		dnsErr  *net.DNSError
		opErr   *net.OpError
		certErr *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		header  tls.RecordHeaderError
		alert   tls.AlertError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, redis.ErrPoolExhausted):
		return "connection pool exhausted"
	case errors.As(err, &reply):
		return replyReason(string(reply))
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case dead(err):
		return "connection lost"
	case errors.As(err, &dnsErr):
		return "host not found"
	case errors.As(err, &certErr), errors.As(err, &unknown), errors.As(err, &header), errors.As(err, &alert):
		return "TLS handshake failed"
	case strings.Contains(err.Error(), "remote error: tls: "):
		// The server's TLS alert, as Go's TLS client words it (TLS 1.3
		// reports a refused client certificate at the first read).
		return "TLS handshake failed: the server refused the connection (does it need a client certificate in Options.TLS?)"
	case errors.As(err, &opErr):
		return "connection failed"
	case errors.Is(err, redis.ErrNil):
		return "unexpected reply"
	case poolClosed(err):
		return "the store is closed"
	}
	return "unexpected error"
}

// replyReason is the reason for an error Redis answered: its error code
// (the reply's first word, when it is one), explained for the codes a
// deployment can cause. The rest of the reply is never used: it can echo
// a command's arguments ("ERR unknown command 'GET', with args beginning
// with: 'sg:s:...'").
func replyReason(reply string) string {
	code, _, _ := strings.Cut(reply, " ")
	if !isErrorCode(code) {
		return "error reply"
	}
	switch code {
	case "READONLY":
		return "READONLY: the server is a read-only replica"
	case "OOM":
		return "OOM: Redis is full (maxmemory reached under noeviction)"
	case "NOAUTH", "WRONGPASS":
		return code + ": authentication failed"
	case "NOPERM":
		return "NOPERM: the Redis user may not run a command the store needs"
	case "LOADING":
		return "LOADING: Redis is loading its data"
	case "BUSY":
		return "BUSY: Redis is running a long script"
	case "MISCONF":
		return "MISCONF: Redis cannot persist and refuses writes"
	case "MASTERDOWN":
		return "MASTERDOWN: the replica has lost its primary"
	case "NOREPLICAS":
		return "NOREPLICAS: the primary has fewer replicas than min-replicas-to-write"
	case "MOVED", "ASK", "CROSSSLOT":
		return code + ": the server is a Redis Cluster node: use a cluster=true URL"
	case "CLUSTERDOWN":
		return "CLUSTERDOWN: a cluster slot has no reachable primary"
	case "TRYAGAIN":
		return "TRYAGAIN: a cluster slot is being moved"
	}
	return "error reply " + code
}

// isErrorCode reports whether s has the shape of a Redis error code: 2 to
// 16 capital letters.
func isErrorCode(s string) bool {
	if len(s) < 2 || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// dead reports whether err says a connection died before it answered:
// closed or reset by the server (CLIENT KILL, a restart, a network blip),
// as opposed to an answer, a timeout or a refused dial.
func dead(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, net.ErrClosed)
}

// errClosed is the cause of an operation on a store that was closed.
var errClosed = errors.New("closed")

// poolClosed reports whether err is an operation's on a closed store:
// errClosed, or redigo's answer for a borrow from a closed pool (its
// error is not exported).
func poolClosed(err error) bool {
	return errors.Is(err, errClosed) || err != nil && err.Error() == "redigo: get on closed pool"
}
