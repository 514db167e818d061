package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/sessiongate/sessiongate/internal/backend"
)

// sentinelSet finds the primary of one master name through Redis
// Sentinel, and watches every sentinel of the master so that a failover
// is seen at once. It is the redisStore's guard (see redisStore.run):
// writes wait while a failover is under way and are confirmed after it,
// and connection errors and READONLY replies make it ask the sentinels
// again.
//
// Its generation counts the primaries it has known: it changes when the
// sentinels announce a new primary (+switch-master) and when a connection
// to the primary fails or finds it read-only. Each connection carries the
// generation it was dialled in, and the pool drops, when borrowed, any
// connection of an older one: no pooled connection reaches a demoted
// primary after the switch is announced.
//
// A write is confirmed (see after) only when three things hold: every
// replica the sentinels list as connected acknowledged it (WAIT), so it
// is on whichever of them a failover promotes; no failover was announced
// and the primary did not change since it started; and every known
// sentinel's watcher was subscribed for its whole span, or else that
// sentinel, asked afterwards, says no failover is under way. Otherwise it
// runs again (every write of the store is safe to repeat), within its
// deadline.
type sentinelSet struct {
	u            *redisURL
	sentinelDial []redis.DialOption
	primaryDial  []redis.DialOption
	// poolSize is the primary's pool's size (Options.PoolSize).
	poolSize int

	mu   sync.Mutex
	addr string // the primary's host:port; "" when the sentinels must be asked
	// sentinels are the sentinels known to monitor the master, by
	// address: the URL's, and those the sentinels list (SENTINEL
	// SENTINELS, +sentinel). Each has a watcher. order holds their
	// addresses, the URL's first, in the order they are asked.
	sentinels map[string]*watcher
	order     []string
	// failing holds, for each sentinel (by address) that announced it is
	// failing over this master, or said so when asked, since when: from
	// +try-failover (or any +failover-state-*) to +switch-master (from
	// any sentinel), its -failover-abort-*, or its saying no failover is
	// under way.
	failing map[string]time.Time
	// want is how many replicas' acknowledgements a write waits for
	// (WAIT): those the sentinels list as connected to the primary, at
	// least 1 while they list one that is not down; -1 before they
	// were asked (then 1).
	want int
	wake chan struct{} // closed, and replaced, when addr or failing changes
	gen  atomic.Uint64
	// refresh asks the refresher to survey the sentinels now (a send
	// that does not block: it holds one request at most).
	refresh chan struct{}

	stop     chan struct{}
	routines sync.WaitGroup // the watchers and the refresher
	conns    map[redis.Conn]struct{}
	closed   bool
}

// The timing of the Sentinel support. None is a user's setting: each is
// far below a failover's duration (seconds) and far above a loopback round
// trip.
const (
	// sentinelAskTimeout bounds one sentinel's answer, so that a sentinel
	// that does not answer leaves time to ask the others.
	sentinelAskTimeout = time.Second
	// replicaAckTimeout is how long, at most, a write waits for the
	// replicas' acknowledgements (WAIT), within the operation's deadline:
	// a healthy replica acknowledges within a round trip. (100 ms made
	// writes run again, and fail, on a busy machine whose replicas were
	// merely slow.)
	replicaAckTimeout = time.Second
	// watchPing is how often a watcher pings its sentinel, and
	// watchPatience how long it waits for any message before it takes the
	// connection for dead and dials again (after watchRedial).
	watchPing     = time.Second
	watchPatience = 3 * time.Second
	watchRedial   = 250 * time.Millisecond
	// surveyEvery is how often the sentinels are asked who they know
	// (sentinels, replicas) when nothing else asks; surveyGap the least
	// time between two surveys.
	surveyEvery = 5 * time.Second
	surveyGap   = 50 * time.Millisecond
	// staleFailover is how long a failover may seem under way before a
	// waiting write asks the sentinels whether it still is (its announcer
	// may have died before ending it).
	staleFailover = 5 * time.Second
	// failoverPoll is how often writes that wait for a failover to end
	// have the sentinels surveyed.
	failoverPoll = 250 * time.Millisecond
	// retryPause is the first pause before an operation tries again, on
	// a failover or a failed primary; it doubles up to retryPauseMax.
	retryPause    = 25 * time.Millisecond
	retryPauseMax = 250 * time.Millisecond
)

var (
	// errRedo says a write ran while a failover may have begun: its fate
	// is unknown, so it runs again on the new primary.
	errRedo = &redisError{msg: "store: unavailable: redis: a Sentinel failover began during the write", kind: []error{backend.ErrUnavailable}}
	// errUnacknowledged says fewer replicas acknowledged a write than
	// the sentinels list as connected: a replica is down, or being
	// promoted.
	errUnacknowledged = &redisError{msg: "store: unavailable: redis: the replicas did not acknowledge the write (a replica down, or a failover under way?)",
		kind: []error{backend.ErrUnavailable}}
	// errUnheard says a sentinel could not be heard during a write nor
	// asked after it: a failover it led would have gone unseen.
	errUnheard = &redisError{msg: "store: unavailable: redis: a sentinel could not be heard during the write",
		kind: []error{backend.ErrUnavailable}}
	// errFailingOver is a write that waited its whole deadline for a
	// failover to end.
	errFailingOver = &redisError{msg: "store: unavailable: redis: a Sentinel failover is under way: writes wait for the new primary",
		kind: []error{backend.ErrUnavailable}}
	// errNotPrimary says the sentinels named servers none of which is (or
	// still is) a primary, until the operation's deadline.
	errNotPrimary = &redisError{msg: "store: unavailable: redis: the server the sentinels name is not a primary (a failover is under way?)",
		kind: []error{backend.ErrUnavailable}}
)

// newSentinelSet returns the set of u (a Sentinel URL) and starts one
// watcher per sentinel of the URL, and the refresher. close stops them.
func newSentinelSet(u *redisURL, opts Options) *sentinelSet {
	s := &sentinelSet{
		u:            u,
		sentinelDial: u.sentinelOptions(opts.TLS),
		primaryDial:  u.dialOptions(opts.TLS, opts.withDefaults().Timeout),
		poolSize:     opts.withDefaults().PoolSize,
		sentinels:    map[string]*watcher{},
		failing:      map[string]time.Time{},
		want:         -1,
		wake:         make(chan struct{}),
		refresh:      make(chan struct{}, 1),
		stop:         make(chan struct{}),
		conns:        map[redis.Conn]struct{}{},
	}
	s.mu.Lock()
	for _, addr := range u.addrs {
		s.addSentinelLocked(addr, true)
	}
	s.routines.Add(1)
	go s.refresher()
	s.mu.Unlock()
	return s
}

// close stops the watchers and the refresher, and waits for them.
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
	s.routines.Wait()
}

// pool returns a pool whose connections go to the primary.
func (s *sentinelSet) pool() *redis.Pool {
	p := newPool(s.poolSize, s.dial)
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

// dial connects to the primary: the one known, or else the first of the
// servers the sentinels name (see rank) that its ROLE confirms. A server
// that is not a primary (a stale sentinel's answer, or one given during a
// failover) is passed over, and the sentinels asked again after a pause,
// until ctx ends.
func (s *sentinelSet) dial(ctx context.Context) (redis.Conn, error) {
	pause := retryPause
	for {
		s.mu.Lock()
		addr, gen := s.addr, s.gen.Load()
		s.mu.Unlock()
		candidates := []string{addr}
		var views []sentinelView
		if addr == "" {
			var err error
			if views, err = s.resolve(ctx); err != nil {
				return nil, err
			}
			candidates = rank(views)
		}
		var lastErr error
		for _, cand := range candidates {
			c, err := s.dialPrimary(ctx, cand)
			switch {
			case err == errNotPrimary:
				if addr != "" {
					s.forget(addr)
				}
				continue
			case err != nil && (isReply(err) || errors.Is(err, backend.ErrMisconfigured)):
				return nil, err
			case err != nil:
				if addr != "" {
					s.forget(addr)
				}
				lastErr = err
				continue
			}
			if addr == "" {
				var ok bool
				if gen, ok = s.adopt(cand); !ok {
					c.Close()
					break // another primary was announced meanwhile: start again
				}
				s.learn(views) // the replicas of the primary adopted
			}
			return &primaryConn{Conn: c, gen: gen}, nil
		}
		if lastErr != nil {
			return nil, lastErr
		}
		if !s.pause(ctx, &pause) {
			return nil, errNotPrimary
		}
	}
}

// dialPrimary connects to addr and confirms it is a primary: errNotPrimary
// if it is not.
func (s *sentinelSet) dialPrimary(ctx context.Context, addr string) (redis.Conn, error) {
	c, err := redis.DialContext(ctx, "tcp", addr, s.primaryDial...)
	if err != nil {
		return nil, err
	}
	isPrimary, err := roleIsPrimary(ctx, c)
	if err == nil && !isPrimary {
		err = errNotPrimary
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// roleIsPrimary reports whether c's server is a primary: ROLE, or INFO
// replication for a Redis user that may not run ROLE.
func roleIsPrimary(ctx context.Context, c redis.Conn) (bool, error) {
	reply, err := redis.Values(do(c, ctx, "ROLE"))
	if err == nil && len(reply) > 0 {
		role, _ := redis.String(reply[0], nil)
		return role == "master", nil
	}
	if err != nil && !isReply(err) {
		return false, err
	}
	info, err := redis.String(do(c, ctx, "INFO", "replication"))
	switch {
	case isReply(err):
		return false, misconfigured("the Redis user may run neither ROLE nor INFO, so the primary cannot be confirmed: allow one of them")
	case err != nil:
		return false, err
	}
	role, _ := infoField(info, "role")
	return role == "master", nil
}

// adopt takes addr, whose role was just confirmed, as the primary unless
// another one became known meanwhile, and returns the generation of
// connections to it.
func (s *sentinelSet) adopt(addr string) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == "" {
		s.addr = addr
		s.wakeLocked()
	}
	return s.gen.Load(), s.addr == addr
}

// forget drops addr as the primary, if it still is the one known, and
// with it every pooled connection: the next dial asks the sentinels.
func (s *sentinelSet) forget(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == addr && addr != "" {
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
	s.refreshLocked()
}

// setFailing records that the sentinel at addr began (on) or abandoned
// (!on) a failover of the master.
func (s *sentinelSet) setFailing(addr string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, was := s.failing[addr]; was == on {
		return
	}
	if on {
		s.failing[addr] = time.Now()
	} else {
		delete(s.failing, addr)
	}
	s.wakeLocked()
}

func (s *sentinelSet) wakeLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// resolve asks every known sentinel, at once, what it knows of the
// master (see survey), and returns the answers that name a primary.
// Sentinels that cannot be reached are skipped. Its errors say what the
// sentinels said when none named one: none knows the master name, a
// server is not a Sentinel, a sentinel refused the credentials, or none
// could be reached.
func (s *sentinelSet) resolve(ctx context.Context) ([]sentinelView, error) {
	views := s.surveyAll(ctx)
	s.learn(views)
	var unknown, notSentinel, refused int
	var lastErr error
	named := views[:0:0]
	for _, v := range views {
		err := v.err
		switch {
		case err == nil && v.primary != "":
			named = append(named, v)
		case err == nil:
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
	case len(named) > 0:
		return named, nil
	case notSentinel > 0:
		return nil, misconfigured(fmt.Sprintf("%d of the URL's %d sentinel addresses are not Sentinels (they know no SENTINEL command): "+
			"for a single Redis, drop master_name and addr from the URL", notSentinel, len(s.u.addrs)))
	case refused > 0:
		return nil, misconfigured("a sentinel refused the credentials: the sentinels' own are sentinel_username and sentinel_password " +
			"(the URL's user and password are the primary's)")
	case unknown > 0:
		return nil, misconfigured(fmt.Sprintf("the sentinels know no primary named %q: check master_name", s.u.master))
	case lastErr == nil:
		lastErr = context.DeadlineExceeded
	}
	return nil, &redisError{msg: "store: unavailable: redis: no sentinel answered (" + reasonOf(lastErr) + ")",
		kind: append([]error{backend.ErrUnavailable}, kindOf(lastErr)...)}
}

// rank orders the primaries the sentinels named, best first: the one
// named with the highest configuration epoch (a sentinel that saw the
// latest failover), then the one most sentinels name, then the one the
// earliest sentinel names. One stale or misconfigured sentinel thus does
// not decide; the caller still confirms the role.
func rank(views []sentinelView) []string {
	type candidate struct {
		addr         string
		epoch        int64
		votes, first int
	}
	var cands []*candidate
	for i, v := range views {
		if v.err != nil || v.primary == "" {
			continue
		}
		j := slices.IndexFunc(cands, func(c *candidate) bool { return c.addr == v.primary })
		if j < 0 {
			cands = append(cands, &candidate{addr: v.primary, epoch: v.epoch, first: i})
			j = len(cands) - 1
		}
		c := cands[j]
		c.votes++
		c.epoch = max(c.epoch, v.epoch)
	}
	slices.SortStableFunc(cands, func(a, b *candidate) int {
		switch {
		case a.epoch != b.epoch:
			return int(b.epoch - a.epoch)
		case a.votes != b.votes:
			return b.votes - a.votes
		}
		return a.first - b.first
	})
	addrs := make([]string, len(cands))
	for i, c := range cands {
		addrs[i] = c.addr
	}
	return addrs
}

// kindOf is the context error err wraps, if any.
func kindOf(err error) []error {
	if e := contextError(err); e != nil {
		return []error{e}
	}
	return nil
}

// span is what guard.before hands guard.after about a write: the
// generation of the primary it starts in, and when it starts.
type span struct {
	gen   uint64
	start time.Time
}

// before waits, within ctx, until no failover is under way, and returns
// the span of a write that starts now.
func (s *sentinelSet) before(ctx context.Context) (span, error) {
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
			return span{gen: gen, start: time.Now()}, nil
		}
		if time.Since(oldest) > staleFailover {
			s.recheckFailover(ctx)
			continue
		}
		// While it waits, the sentinels are surveyed every failoverPoll:
		// the end of a failover whose announcement no watcher heard is
		// then seen within that time.
		timer := time.NewTimer(min(time.Until(oldest.Add(staleFailover)), failoverPoll))
		select {
		case <-wake:
		case <-timer.C:
			s.askSoon()
		case <-ctx.Done():
			timer.Stop()
			return span{}, errFailingOver
		}
		timer.Stop()
	}
}

// recheckFailover asks each sentinel that announced a failover long ago
// whether it is still under way (the failover_in_progress flag of
// SENTINEL MASTER), and forgets those that say no or do not answer.
func (s *sentinelSet) recheckFailover(ctx context.Context) {
	s.mu.Lock()
	var stale []string
	for addr, since := range s.failing {
		if time.Since(since) > staleFailover {
			stale = append(stale, addr)
		}
	}
	s.mu.Unlock()
	for _, addr := range stale {
		if v := s.survey(ctx, addr); v.err == nil && v.inProgress {
			s.mu.Lock()
			if _, ok := s.failing[addr]; ok {
				s.failing[addr] = time.Now()
			}
			s.mu.Unlock()
			continue
		}
		s.setFailing(addr, false)
	}
}

// after confirms a write that ran on conn in sp. It waits
// (replicaAckTimeout at most) for the acknowledgement of every replica
// the sentinels list as connected, so that the write is on whichever one
// a failover promotes: fewer make it errUnacknowledged (and the sentinels
// are surveyed again: a replica that went down leaves the count). Then it
// checks that no failover was announced and the primary did not change
// since the write started, and that each sentinel was heard throughout
// (see heard). If not, the write may be on a demoted primary that will
// throw it away: the error makes it run again (every write of the store
// is safe to repeat). A write that runs again first writes sg:health (as
// Check does), so that its WAIT covers what the earlier run wrote even
// when this run writes nothing (a mint that finds itself already there).
func (s *sentinelSet) after(ctx context.Context, conn redis.Conn, sp span) error {
	q, err := s.queue(ctx, conn)
	if err != nil {
		return err
	}
	var replies []any
	if q.replies > 0 {
		if replies, err = redis.Values(do(conn, ctx, "")); err != nil {
			return err
		}
	}
	return s.confirm(ctx, sp, q, replies)
}

// queue is after's first half: it sends on conn, without flushing, the
// commands that confirm a write (WAIT, after a SET of sg:health when the
// write runs again), and answers how many replies they have (0: none, no
// replica to wait for). A write may send its own command first, then
// read every reply in one round trip and hand queue's to confirm.
func (s *sentinelSet) queue(ctx context.Context, conn redis.Conn) (queued, error) {
	s.mu.Lock()
	want := s.want
	s.mu.Unlock()
	if want < 0 {
		want = 1
	}
	if want == 0 {
		return queued{}, nil
	}
	q := queued{want: want, replies: 1}
	if isRetry(ctx) {
		if err := conn.Send("SET", healthKey, "1", "PX", 60000); err != nil {
			return queued{}, err
		}
		q.replies++
	}
	wait := replicaAckTimeout
	if deadline, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(deadline))
	}
	return q, conn.Send("WAIT", want, max(wait.Milliseconds(), 1))
}

// queued is what queue sent: the replicas WAIT asked for (0: no WAIT
// sent), and how many replies its commands have.
type queued struct{ want, replies int }

// confirm is after's second half: replies are the replies to what queue
// sent as q (the last one WAIT's; none when it sent nothing).
func (s *sentinelSet) confirm(ctx context.Context, sp span, q queued, replies []any) error {
	if len(replies) != q.replies {
		return errors.New("store: unexpected number of replies to WAIT")
	}
	if q.want > 0 {
		for _, r := range replies {
			if e, failed := r.(redis.Error); failed {
				return e
			}
		}
		acked, err := redis.Int(replies[len(replies)-1], nil)
		switch {
		case err != nil:
			return err
		case acked < q.want:
			s.askSoon()
			return errUnacknowledged
		case acked > q.want:
			s.askSoon() // a replica the sentinels did not list yet
		}
	}
	s.mu.Lock()
	moved := len(s.failing) > 0 || s.gen.Load() != sp.gen
	s.mu.Unlock()
	if moved {
		return errRedo
	}
	return s.heard(ctx, sp)
}

// again reports whether an operation that failed with err should run
// again, after a pause, within ctx: a write to redo, a primary that cannot
// be reached or turned read-only (asked for again), a primary without
// the replicas min-replicas-to-write asks for (a new one, until they
// attach), or a failover under way. Misconfigurations and answers are
// final.
func (s *sentinelSet) again(ctx context.Context, err error, pause *time.Duration) bool {
	var netErr *net.OpError
	// The operation's own deadline may have cut the command off (a read
	// timeout) before Done's timer fired: remaining says so, as Err will,
	// and a timeout of the operation's own is no reason to forget the
	// primary.
	_, _, over := remaining(ctx)
	switch {
	case over != nil || errors.Is(err, backend.ErrMisconfigured):
		return false
	case err == errRedo, err == errNotPrimary, err == errUnacknowledged, err == errUnheard,
		isReply(err, "NOREPLICAS"): // a new primary whose replicas are still attaching
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
