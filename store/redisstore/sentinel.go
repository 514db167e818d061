package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/sessiongate/sessiongate/internal/backend"
)

// sentinelSet finds the primary of one master name through Redis
// Sentinel, and watches the sentinels so that a failover is seen at once.
// It is the redisStore's guard (see redisStore.run): writes wait while a
// failover is under way and are confirmed after it, and connection errors
// and READONLY replies make it ask the sentinels again.
//
// Its generation counts the primaries it has known: it changes when the
// sentinels announce a new primary (+switch-master) and when a connection
// to the primary fails or finds it read-only. Each connection carries the
// generation it was dialled in, and the pool drops, when borrowed, any
// connection of an older one: no pooled connection reaches a demoted
// primary after the switch is announced.
type sentinelSet struct {
	u            *redisURL
	sentinelDial []redis.DialOption
	primaryDial  []redis.DialOption

	mu   sync.Mutex
	addr string // the primary's host:port; "" when the sentinels must be asked
	// failing holds, for each sentinel (by index in u.addrs) that
	// announced it is failing over this master, since when: from
	// +try-failover (or any +failover-state-*) to +switch-master (from
	// any sentinel) or its -failover-abort-*.
	failing map[int]time.Time
	wake    chan struct{} // closed, and replaced, when addr or failing changes
	gen     atomic.Uint64

	stop     chan struct{}
	watchers sync.WaitGroup
	conns    map[redis.Conn]struct{} // the watchers' connections, closed by close
	closed   bool
}

// The timing of the Sentinel support. None is a user's setting: each is
// far below a failover's duration (seconds) and far above a loopback round
// trip.
const (
	// sentinelAskTimeout bounds one sentinel's answer, so that a sentinel
	// that does not answer leaves time to ask the next.
	sentinelAskTimeout = time.Second
	// replicaAckTimeout is how long a write waits for a replica's
	// acknowledgement (WAIT 1): a healthy replica acknowledges within a
	// round trip; without one, the write stands on the primary alone.
	replicaAckTimeout = 100 * time.Millisecond
	// watchPing is how often a watcher pings its sentinel, and
	// watchPatience how long it waits for any message before it takes the
	// connection for dead and dials again (after watchRedial).
	watchPing     = time.Second
	watchPatience = 3 * time.Second
	watchRedial   = 250 * time.Millisecond
	// staleFailover is how long a failover may seem under way before a
	// waiting write asks the sentinels whether it still is (its announcer
	// may have died before ending it).
	staleFailover = 5 * time.Second
	// retryPause is the first pause before an operation tries again, on
	// a failover or a failed primary; it doubles up to retryPauseMax.
	retryPause    = 25 * time.Millisecond
	retryPauseMax = 250 * time.Millisecond
)

// watchedChannels are the sentinels' announcements a watcher listens to.
var watchedChannels = []any{"+switch-master", "+try-failover", "+failover-state-*", "-failover-abort-*"}

var (
	// errRedo says a write ran while a failover may have begun: its fate
	// is unknown, so it runs again on the new primary.
	errRedo = &redisError{msg: "store: unavailable: redis: a Sentinel failover began during the write", kind: []error{backend.ErrUnavailable}}
	// errFailingOver is a write that waited its whole deadline for a
	// failover to end.
	errFailingOver = &redisError{msg: "store: unavailable: redis: a Sentinel failover is under way: writes wait for the new primary",
		kind: []error{backend.ErrUnavailable}}
	// errNotPrimary says the sentinels named a server that is not (or no
	// longer) a primary, until the operation's deadline.
	errNotPrimary = &redisError{msg: "store: unavailable: redis: the server the sentinels name is not a primary (a failover is under way?)",
		kind: []error{backend.ErrUnavailable}}
)

// newSentinelSet returns the set of u (a Sentinel URL) and starts one
// watcher per sentinel. close stops them.
func newSentinelSet(u *redisURL, opts Options) *sentinelSet {
	s := &sentinelSet{
		u:            u,
		sentinelDial: u.sentinelOptions(opts.TLS),
		primaryDial:  u.dialOptions(opts.TLS),
		failing:      map[int]time.Time{},
		wake:         make(chan struct{}),
		stop:         make(chan struct{}),
		conns:        map[redis.Conn]struct{}{},
	}
	for i := range u.addrs {
		s.watchers.Add(1)
		go s.watch(i)
	}
	return s
}

// close stops the watchers and waits for them.
func (s *sentinelSet) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.stop)
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.watchers.Wait()
}

// pool returns a pool whose connections go to the primary.
func (s *sentinelSet) pool() *redis.Pool {
	p := newPool(s.dial)
	idle := p.TestOnBorrowContext
	p.TestOnBorrowContext = func(ctx context.Context, c redis.Conn, idleSince time.Time) error {
		if pc, ok := c.(*primaryConn); !ok || pc.gen != s.gen.Load() {
			return errors.New("redisstore: a connection to a former primary")
		}
		return idle(ctx, c, idleSince)
	}
	return p
}

// primaryConn is a connection to the primary, with the generation it was
// dialled in.
type primaryConn struct {
	redis.Conn
	gen uint64
}

func (c *primaryConn) DoContext(ctx context.Context, cmd string, args ...any) (any, error) {
	return redis.DoContext(c.Conn, ctx, cmd, args...)
}

func (c *primaryConn) ReceiveContext(ctx context.Context) (any, error) {
	return redis.ReceiveContext(c.Conn, ctx)
}

func (c *primaryConn) DoWithTimeout(timeout time.Duration, cmd string, args ...any) (any, error) {
	return redis.DoWithTimeout(c.Conn, timeout, cmd, args...)
}

func (c *primaryConn) ReceiveWithTimeout(timeout time.Duration) (any, error) {
	return redis.ReceiveWithTimeout(c.Conn, timeout)
}

// dial connects to the primary: the one known, or the one the sentinels
// name, confirmed by its ROLE. A server that is not a primary (the
// sentinels' answer is stale during a failover) is dropped and the
// sentinels asked again, until ctx ends.
func (s *sentinelSet) dial(ctx context.Context) (redis.Conn, error) {
	pause := retryPause
	for {
		addr, gen, err := s.primary(ctx)
		if err != nil {
			return nil, err
		}
		c, err := redis.DialContext(ctx, "tcp", addr, s.primaryDial...)
		if err != nil {
			if !isReply(err) {
				s.forget(addr)
			}
			return nil, err
		}
		isPrimary, err := roleIsPrimary(ctx, c)
		switch {
		case err != nil:
			c.Close()
			if !isReply(err) {
				s.forget(addr)
			}
			return nil, err
		case isPrimary:
			return &primaryConn{Conn: c, gen: gen}, nil
		}
		c.Close()
		s.forget(addr)
		if !s.pause(ctx, &pause) {
			return nil, errNotPrimary
		}
	}
}

// roleIsPrimary reports whether c's server is a primary: ROLE, or INFO
// replication for a Redis user that may not run ROLE.
func roleIsPrimary(ctx context.Context, c redis.Conn) (bool, error) {
	reply, err := redis.Values(redis.DoContext(c, ctx, "ROLE"))
	if err == nil && len(reply) > 0 {
		role, _ := redis.String(reply[0], nil)
		return role == "master", nil
	}
	if err != nil && !isReply(err) {
		return false, err
	}
	info, err := redis.String(redis.DoContext(c, ctx, "INFO", "replication"))
	switch {
	case isReply(err):
		return false, misconfigured("the Redis user may run neither ROLE nor INFO, so the primary cannot be confirmed: allow one of them")
	case err != nil:
		return false, err
	}
	role, _ := infoField(info, "role")
	return role == "master", nil
}

// primary returns the primary's address, asking the sentinels when it is
// not known, and the generation a connection to it belongs to.
func (s *sentinelSet) primary(ctx context.Context) (string, uint64, error) {
	s.mu.Lock()
	addr, gen := s.addr, s.gen.Load()
	s.mu.Unlock()
	if addr != "" {
		return addr, gen, nil
	}
	addr, err := s.resolve(ctx)
	if err != nil {
		return "", 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == "" {
		s.addr = addr
	}
	return s.addr, s.gen.Load(), nil
}

// forget drops addr as the primary, if it still is the one known, and
// with it every pooled connection: the next dial asks the sentinels.
func (s *sentinelSet) forget(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == addr {
		s.addr = ""
		s.gen.Add(1)
		s.wakeLocked()
	}
}

// switched records the primary a sentinel announced: the failover is over.
func (s *sentinelSet) switched(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr != addr {
		s.addr = addr
		s.gen.Add(1)
	}
	clear(s.failing)
	s.wakeLocked()
}

// setFailing records that sentinel i began (on) or abandoned (!on) a
// failover of the master.
func (s *sentinelSet) setFailing(i int, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, was := s.failing[i]; was == on {
		return
	}
	if on {
		s.failing[i] = time.Now()
	} else {
		delete(s.failing, i)
	}
	s.wakeLocked()
}

func (s *sentinelSet) wakeLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// resolve asks the sentinels, in order, for the primary's address: the
// first that answers names it. Sentinels that cannot be reached are
// skipped. Its errors say what the sentinels said: none knows the master
// name, a server is not a Sentinel, a sentinel refused the credentials, or
// none could be reached.
func (s *sentinelSet) resolve(ctx context.Context) (string, error) {
	var unknown, notSentinel, refused int
	var lastErr error
	for _, sentinelAddr := range s.u.addrs {
		if ctx.Err() != nil {
			break
		}
		addr, err := s.ask(ctx, sentinelAddr)
		switch {
		case err == nil:
			return addr, nil
		case errors.Is(err, redis.ErrNil):
			unknown++
		case isReply(err, "ERR") && strings.Contains(strings.ToLower(err.Error()), "unknown command"):
			notSentinel++
		case isReply(err, "NOAUTH", "WRONGPASS", "NOPERM") ||
			isReply(err, "ERR") && strings.Contains(strings.ToLower(err.Error()), "auth"):
			refused++
		default:
			lastErr = err
		}
	}
	switch {
	case notSentinel > 0:
		return "", misconfigured(fmt.Sprintf("%d of the URL's %d sentinel addresses are not Sentinels (they know no SENTINEL command): "+
			"for a single Redis, drop master_name and addr from the URL", notSentinel, len(s.u.addrs)))
	case refused > 0:
		return "", misconfigured("a sentinel refused the credentials: the sentinels' own are sentinel_username and sentinel_password " +
			"(the URL's user and password are the primary's)")
	case unknown > 0:
		return "", misconfigured(fmt.Sprintf("the sentinels know no primary named %q: check master_name", s.u.master))
	case lastErr == nil:
		lastErr = context.DeadlineExceeded
	}
	return "", &redisError{msg: "store: unavailable: redis: no sentinel answered (" + reasonOf(lastErr) + ")",
		kind: append([]error{backend.ErrUnavailable}, kindOf(lastErr)...)}
}

// kindOf is the context error err wraps, if any.
func kindOf(err error) []error {
	if e := contextError(err); e != nil {
		return []error{e}
	}
	return nil
}

// ask asks one sentinel for the primary's address, within
// sentinelAskTimeout.
func (s *sentinelSet) ask(ctx context.Context, sentinelAddr string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, sentinelAskTimeout)
	defer cancel()
	c, err := redis.DialContext(ctx, "tcp", sentinelAddr, s.sentinelDial...)
	if err != nil {
		return "", err
	}
	defer c.Close()
	reply, err := redis.Strings(redis.DoContext(c, ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.u.master))
	switch {
	case err != nil:
		return "", err
	case len(reply) != 2:
		return "", redis.ErrNil
	}
	return net.JoinHostPort(reply[0], reply[1]), nil
}

// before waits, within ctx, until no failover is under way, and returns
// the generation a write starts in.
func (s *sentinelSet) before(ctx context.Context) (uint64, error) {
	for {
		s.mu.Lock()
		gen, wake, failing := s.gen.Load(), s.wake, len(s.failing) > 0
		var oldest time.Time
		for _, since := range s.failing {
			if oldest.IsZero() || since.Before(oldest) {
				oldest = since
			}
		}
		s.mu.Unlock()
		if !failing {
			return gen, nil
		}
		if time.Since(oldest) > staleFailover {
			s.recheckFailover(ctx)
			continue
		}
		timer := time.NewTimer(time.Until(oldest.Add(staleFailover)))
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return 0, errFailingOver
		}
		timer.Stop()
	}
}

// recheckFailover asks each sentinel that announced a failover long ago
// whether it is still under way (the failover_in_progress flag of
// SENTINEL MASTER), and forgets those that say no or do not answer.
func (s *sentinelSet) recheckFailover(ctx context.Context) {
	s.mu.Lock()
	var stale []int
	for i, since := range s.failing {
		if time.Since(since) > staleFailover {
			stale = append(stale, i)
		}
	}
	s.mu.Unlock()
	for _, i := range stale {
		if s.stillFailing(ctx, s.u.addrs[i]) {
			s.mu.Lock()
			if _, ok := s.failing[i]; ok {
				s.failing[i] = time.Now()
			}
			s.mu.Unlock()
			continue
		}
		s.setFailing(i, false)
	}
}

// stillFailing reports whether the sentinel at addr says a failover of
// the master is under way.
func (s *sentinelSet) stillFailing(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, sentinelAskTimeout)
	defer cancel()
	c, err := redis.DialContext(ctx, "tcp", addr, s.sentinelDial...)
	if err != nil {
		return false
	}
	defer c.Close()
	fields, err := redis.StringMap(redis.DoContext(c, ctx, "SENTINEL", "MASTER", s.u.master))
	return err == nil && strings.Contains(fields["flags"], "failover_in_progress")
}

// after confirms a write that ran on conn in generation gen: it waits
// (replicaAckTimeout at most) for one replica's acknowledgement, then
// checks that no failover began since the write started. If one did, the
// write may be on a demoted primary that will throw it away: errRedo
// makes it run again on the new primary (every write of the store is
// safe to repeat).
func (s *sentinelSet) after(ctx context.Context, conn redis.Conn, gen uint64) error {
	wait := replicaAckTimeout
	if deadline, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(deadline))
	}
	if _, err := redis.Int(redis.DoContext(conn, ctx, "WAIT", 1, max(wait.Milliseconds(), 1))); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failing) > 0 || s.gen.Load() != gen {
		return errRedo
	}
	return nil
}

// again reports whether an operation that failed with err should run
// again, after a pause, within ctx: a write to redo, a primary that cannot
// be reached or turned read-only (asked for again), or a failover under
// way. Misconfigurations and answers are final.
func (s *sentinelSet) again(ctx context.Context, err error, pause *time.Duration) bool {
	var netErr *net.OpError
	switch {
	case ctx.Err() != nil || errors.Is(err, backend.ErrMisconfigured):
		return false
	case err == errRedo, err == errNotPrimary:
	case isReply(err, "READONLY", "MASTERDOWN", "LOADING"),
		!isReply(err) && (dead(err) || errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &netErr)):
		s.mu.Lock()
		addr := s.addr
		s.mu.Unlock()
		s.forget(addr)
	default:
		var own *redisError
		if !errors.As(err, &own) || !strings.Contains(own.msg, "no sentinel answered") {
			return false
		}
	}
	return s.pause(ctx, pause)
}

// pause waits *d (doubled for the next time, up to retryPauseMax), or
// until the primary or a failover changes, within ctx. It reports whether
// ctx still has time.
func (s *sentinelSet) pause(ctx context.Context, d *time.Duration) bool {
	s.mu.Lock()
	wake := s.wake
	s.mu.Unlock()
	timer := time.NewTimer(*d)
	defer timer.Stop()
	*d = min(2**d, retryPauseMax)
	select {
	case <-timer.C:
	case <-wake:
	case <-ctx.Done():
	}
	return ctx.Err() == nil
}

// watch listens to sentinel i's announcements until close, dialling it
// again whenever its connection fails.
func (s *sentinelSet) watch(i int) {
	defer s.watchers.Done()
	for {
		s.listen(i)
		select {
		case <-s.stop:
			return
		case <-time.After(watchRedial):
		}
	}
}

// listen subscribes to sentinel i's announcements and handles them until
// its connection fails or close closes it. Once subscribed, it asks the
// sentinel for the primary, in case it switched while nobody listened.
func (s *sentinelSet) listen(i int) {
	ctx, cancel := context.WithTimeout(context.Background(), sentinelAskTimeout)
	c, err := redis.DialContext(ctx, "tcp", s.u.addrs[i], s.sentinelDial...)
	cancel()
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()

	psc := redis.PubSubConn{Conn: c}
	if psc.PSubscribe(watchedChannels...) != nil {
		return
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		ticker := time.NewTicker(watchPing)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
				if psc.Ping("") != nil {
					return
				}
			}
		}
	}()
	for {
		switch m := psc.ReceiveWithTimeout(watchPatience).(type) {
		case error:
			return
		case redis.Subscription:
			if m.Count == len(watchedChannels) {
				s.catchUp(i)
			}
		case redis.Message:
			s.announce(i, m.Channel, string(m.Data))
		}
	}
}

// catchUp asks sentinel i for the primary, and takes its answer when it
// differs from the one known: the switch was announced while no watcher
// listened to it.
func (s *sentinelSet) catchUp(i int) {
	ctx, cancel := context.WithTimeout(context.Background(), sentinelAskTimeout)
	defer cancel()
	addr, err := s.ask(ctx, s.u.addrs[i])
	if err != nil {
		return
	}
	s.mu.Lock()
	known := s.addr
	s.mu.Unlock()
	if known != "" && known != addr {
		s.switched(addr)
	}
}

// announce handles one announcement of sentinel i, on channel, for any
// master: +switch-master "<name> <old ip> <old port> <new ip> <new port>",
// the others "master <name> <ip> <port> ...".
func (s *sentinelSet) announce(i int, channel, data string) {
	f := strings.Fields(data)
	switch {
	case channel == "+switch-master":
		if len(f) == 5 && f[0] == s.u.master {
			s.switched(net.JoinHostPort(f[3], f[4]))
		}
	case len(f) < 2 || f[0] != "master" || f[1] != s.u.master:
	case strings.HasPrefix(channel, "-failover-abort-"):
		s.setFailing(i, false)
	default: // +try-failover, +failover-state-*
		s.setFailing(i, true)
	}
}
