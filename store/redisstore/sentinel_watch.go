package redisstore

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
)

// watcher is one known sentinel: its address, and the state of the
// connection that listens to its announcements.
type watcher struct {
	addr  string
	inURL bool // the URL names it
	// since is when the watcher's current subscription was confirmed;
	// zero while it has none (dialling, or its connection failed).
	since time.Time
	// reached says the watcher has subscribed once and its latest dial
	// did not fail: only such a sentinel can be heard, so only its
	// silence keeps a write from being confirmed (see heard).
	reached bool
	// check is the latest survey of this sentinel made for writes its
	// watcher did not cover (see heard); later writes share it when it
	// started after they ended.
	check *sentinelCheck
}

// sentinelCheck is one survey of a sentinel, shared by the writes that
// wait for it.
type sentinelCheck struct {
	started time.Time
	done    chan struct{}
	view    sentinelView
}

// sentinelView is what one sentinel says about the master (see survey).
type sentinelView struct {
	sentinel string    // its address
	asked    time.Time // when it was asked
	err      error     // why it did not answer; nil when it did
	primary  string    // the primary it names (host:port); "" if it knows no such master
	epoch    int64     // its configuration epoch for the master
	// inProgress says a failover of the master is under way on this
	// sentinel (its leader), and promoted that the replica it chose was
	// seen promoted: it then names that one already.
	inProgress, promoted bool
	// sentinels are the other sentinels of the master it knows.
	sentinels []string
	// replicas counts the replicas it lists that are not down, and
	// connected those of them linked to the primary and in reach.
	replicas, connected int
}

// watchedChannels are the sentinels' announcements a watcher listens to.
var watchedChannels = []any{"+switch-master", "+try-failover", "+failover-state-*", "-failover-abort-*", "+sentinel"}

// addSentinelLocked makes the sentinel at addr known, and starts its
// watcher, unless it is known or the set is closed. s.mu is held.
func (s *sentinelSet) addSentinelLocked(addr string, inURL bool) {
	if _, ok := s.sentinels[addr]; ok || s.closed {
		return
	}
	w := &watcher{addr: addr, inURL: inURL}
	s.sentinels[addr] = w
	s.order = append(s.order, addr)
	s.routines.Add(1)
	go s.watch(w)
}

// askSoon asks the refresher to survey the sentinels now.
func (s *sentinelSet) askSoon() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked()
}

func (s *sentinelSet) refreshLocked() {
	select {
	case s.refresh <- struct{}{}:
	default:
	}
}

// refresher surveys every known sentinel every surveyEvery, and when
// asked (askSoon), at most every surveyGap, until close: it learns the
// sentinels and replicas they list, and drops the primary when they name
// another one first (a switch no watcher heard).
func (s *sentinelSet) refresher() {
	defer s.routines.Done()
	ticker := time.NewTicker(surveyEvery)
	defer ticker.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-ticker.C:
		case <-s.refresh:
		}
		ctx, cancel := context.WithTimeout(context.Background(), sentinelAskTimeout)
		views := s.surveyAll(ctx)
		cancel()
		s.learn(views)
		s.mu.Lock()
		known := s.addr
		s.mu.Unlock()
		// The sentinels name another primary first: a switch no watcher
		// heard (taken, as +switch-master, once a sentinel that is not
		// failing over names it), or one under way (then the next
		// connection asks them again).
		switch ranked := rank(views); {
		case len(ranked) == 0 || ranked[0] == known:
		case settled(views, ranked[0]):
			s.switched(ranked[0])
		default:
			s.forget(known)
		}
		select {
		case <-s.stop:
			return
		case <-time.After(surveyGap):
		}
	}
}

// learn takes in what the sentinels said: the sentinels they know (each
// gets a watcher), the failovers they have under way, and how many
// replicas a write waits for (from those that name the known primary).
func (s *sentinelSet) learn(views []sentinelView) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want, named := 0, false
	for _, v := range views {
		if v.err != nil || v.primary == "" {
			continue
		}
		for _, addr := range v.sentinels {
			s.addSentinelLocked(addr, false)
		}
		since, was := s.failing[v.sentinel]
		failing := s.failingLocked(v)
		switch {
		case failing && !was:
			s.failing[v.sentinel] = time.Now()
			s.wakeLocked()
		case !failing && was && since.Before(v.asked):
			delete(s.failing, v.sentinel)
			s.wakeLocked()
		}
		if v.primary == s.addr {
			named = true
			w := v.connected
			if v.replicas > 0 {
				w = max(w, 1)
			}
			want = max(want, w)
		}
	}
	if named {
		s.want = want
	}
}

// failingLocked reports whether v says writes must wait: a failover is
// under way on its sentinel and its new primary is not yet promoted, or
// is not yet the one the store uses. s.mu is held.
func (s *sentinelSet) failingLocked(v sentinelView) bool {
	return v.inProgress && (!v.promoted || v.primary != s.addr)
}

// settled reports whether a sentinel that is not failing the master over
// names addr: it took addr as the primary (as +switch-master announces).
func settled(views []sentinelView, addr string) bool {
	for _, v := range views {
		if v.err == nil && v.primary == addr && !v.inProgress {
			return true
		}
	}
	return false
}

// surveyAll surveys the known sentinels at once, within ctx, and returns
// their answers, in the order the sentinels are known: the URL's, and
// those discovered that the store could reach (a sentinel may announce
// an address the store cannot reach: it is not waited for).
func (s *sentinelSet) surveyAll(ctx context.Context) []sentinelView {
	s.mu.Lock()
	var addrs []string
	for _, addr := range s.order {
		if w := s.sentinels[addr]; w.inURL || w.reached {
			addrs = append(addrs, addr)
		}
	}
	s.mu.Unlock()
	views := make([]sentinelView, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() { views[i] = s.survey(ctx, addr) })
	}
	wg.Wait()
	return views
}

// survey asks the sentinel at addr, in one round trip within
// sentinelAskTimeout, for the master's address (SENTINEL
// GET-MASTER-ADDR-BY-NAME), its configuration epoch and flags (SENTINEL
// MASTER), the other sentinels (SENTINEL SENTINELS) and the replicas
// (SENTINEL REPLICAS). Only the first answer is required: a sentinel user
// that may not run the others gives a view without them.
func (s *sentinelSet) survey(ctx context.Context, addr string) sentinelView {
	v := sentinelView{sentinel: addr, asked: time.Now()}
	ctx, cancel := context.WithTimeout(ctx, sentinelAskTimeout)
	defer cancel()
	c, err := redis.DialContext(ctx, "tcp", addr, s.sentinelDial...)
	if err != nil {
		v.err = err
		return v
	}
	defer c.Close()
	c.Send("SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.u.master)
	c.Send("SENTINEL", "MASTER", s.u.master)
	c.Send("SENTINEL", "SENTINELS", s.u.master)
	c.Send("SENTINEL", "REPLICAS", s.u.master)
	if err := c.Flush(); err != nil {
		v.err = err
		return v
	}
	replies := make([]any, 4)
	errs := make([]error, 4)
	for i := range replies {
		if replies[i], errs[i] = receive(c, ctx); errs[i] != nil && !isReply(errs[i]) {
			v.err = errs[i]
			return v
		}
	}
	addrReply, err := redis.Strings(replies[0], errs[0])
	switch {
	case errors.Is(err, redis.ErrNil):
		return v // no such master
	case err != nil:
		v.err = err
		return v
	case len(addrReply) == 2:
		v.primary = net.JoinHostPort(addrReply[0], addrReply[1])
	}
	if master, err := redis.StringMap(replies[1], errs[1]); err == nil {
		v.epoch, _ = strconv.ParseInt(master["config-epoch"], 10, 64)
		v.inProgress = strings.Contains(master["flags"], "failover_in_progress")
		// Once the leader has seen the replica promoted, it names it
		// (GET-MASTER-ADDR-BY-NAME) while its failover goes on.
		v.promoted = v.primary != net.JoinHostPort(master["ip"], master["port"])
	}
	if others, err := redis.Values(replies[2], errs[2]); err == nil {
		for _, o := range others {
			if m, err := redis.StringMap(o, nil); err == nil && m["ip"] != "" && !isDown(m["flags"]) {
				v.sentinels = append(v.sentinels, net.JoinHostPort(m["ip"], m["port"]))
			}
		}
	}
	if replicas, err := redis.Values(replies[3], errs[3]); err == nil {
		for _, r := range replicas {
			m, err := redis.StringMap(r, nil)
			if err != nil || isDown(m["flags"]) {
				continue
			}
			v.replicas++
			if !strings.Contains(m["flags"], "disconnected") && m["master-link-status"] == "ok" {
				v.connected++
			}
		}
	}
	return v
}

// isDown reports whether a sentinel's flags for an instance say it is
// down.
func isDown(flags string) bool {
	return strings.Contains(flags, "s_down") || strings.Contains(flags, "o_down")
}

// heard confirms that no failover went unseen during a write that started
// at sp.start: each sentinel the store reaches had its watcher
// subscribed from before then until now, or else, asked after the write
// ended, says no failover is under way and names the known primary (a
// failover that promoted a replica before the write ended would still be
// under way on its leader, or would have named the new primary). A
// sentinel the store cannot connect to (down, or announcing an address
// the store cannot reach) or that does not answer within
// sentinelAskTimeout cannot be heard and does not hold writes up:
// a failover it leads is caught by the replicas' acknowledgements alone
// (see after). A sentinel that answers otherwise is errUnheard, or
// errRedo when it says a failover is under way.
func (s *sentinelSet) heard(ctx context.Context, sp span) error {
	s.mu.Lock()
	var unheard []*watcher
	for _, addr := range s.order {
		if w := s.sentinels[addr]; w.reached && (w.since.IsZero() || w.since.After(sp.start)) {
			unheard = append(unheard, w)
		}
	}
	primary := s.addr
	s.mu.Unlock()
	if len(unheard) == 0 {
		return nil
	}
	end := time.Now()
	for _, w := range unheard {
		v := s.checkSentinel(ctx, w, end)
		switch {
		case v.err != nil && (isReply(v.err) || ctx.Err() != nil):
			return errUnheard
		case v.err != nil:
			// It cannot be reached, or does not answer (frozen): until its
			// watcher subscribes again, it holds no write up.
			s.mu.Lock()
			w.reached = false
			s.mu.Unlock()
		case v.primary == "":
			// It does not monitor the master (any more): it fails over
			// none of it.
		case v.inProgress:
			if s.mu.Lock(); s.failingLocked(v) {
				s.failing[w.addr] = time.Now()
				s.wakeLocked()
			}
			s.mu.Unlock()
			return errRedo
		case v.primary != primary:
			s.askSoon()
			return errRedo
		}
	}
	return nil
}

// checkSentinel surveys w for a write that ended at end, or waits for a
// survey of w that another write started after end.
func (s *sentinelSet) checkSentinel(ctx context.Context, w *watcher, end time.Time) sentinelView {
	s.mu.Lock()
	c := w.check
	if c == nil || c.started.Before(end) {
		c = &sentinelCheck{started: time.Now(), done: make(chan struct{})}
		w.check = c
		s.mu.Unlock()
		c.view = s.survey(ctx, w.addr)
		close(c.done)
		s.learn([]sentinelView{c.view})
		return c.view
	}
	s.mu.Unlock()
	select {
	case <-c.done:
		return c.view
	case <-ctx.Done():
		return sentinelView{sentinel: w.addr, err: ctx.Err()}
	}
}

// watch listens to w's announcements until close, dialling it again
// whenever its connection fails: after watchRedial, doubled after each
// connection that did not subscribe, up to surveyEvery.
func (s *sentinelSet) watch(w *watcher) {
	defer s.routines.Done()
	redial := watchRedial
	for {
		if s.listen(w) {
			redial = watchRedial
		} else {
			redial = min(2*redial, surveyEvery)
		}
		select {
		case <-s.stop:
			return
		case <-time.After(redial):
		}
	}
}

// listen subscribes to w's announcements and handles them until its
// connection fails or close closes it. Once subscribed, it marks w
// subscribed and surveys the sentinel, in case a failover began or the
// primary switched while nobody listened. It reports whether it
// subscribed.
func (s *sentinelSet) listen(w *watcher) (subscribed bool) {
	ctx, cancel := context.WithTimeout(context.Background(), sentinelAskTimeout)
	c, err := redis.DialContext(ctx, "tcp", w.addr, s.sentinelDial...)
	cancel()
	if err != nil {
		s.mu.Lock()
		w.reached = false
		s.mu.Unlock()
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
		w.since = time.Time{}
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
				subscribed = true
				s.mu.Lock()
				w.since, w.reached = time.Now(), true
				s.mu.Unlock()
				s.catchUp(w)
			}
		case redis.Message:
			s.announce(w, m.Channel, string(m.Data))
		}
	}
}

// catchUp surveys w's sentinel once its watcher is subscribed: a
// failover under way is noted, and a primary other than the one known
// makes the next connection ask every sentinel again (one sentinel's word
// does not move the store: it may be stale).
func (s *sentinelSet) catchUp(w *watcher) {
	ctx, cancel := context.WithTimeout(context.Background(), sentinelAskTimeout)
	defer cancel()
	v := s.survey(ctx, w.addr)
	if v.err != nil || v.primary == "" {
		return
	}
	s.learn([]sentinelView{v})
	s.mu.Lock()
	known := s.addr
	s.mu.Unlock()
	if known != "" && known != v.primary {
		s.askSoon()
	}
}

// announce handles one announcement of w's sentinel, on channel, for any
// master: +switch-master "<name> <old ip> <old port> <new ip> <new port>",
// +sentinel "sentinel <id> <ip> <port> @ <name> <ip> <port>", the others
// "master <name> <ip> <port> ...".
func (s *sentinelSet) announce(w *watcher, channel, data string) {
	f := strings.Fields(data)
	switch {
	case channel == "+switch-master":
		if len(f) == 5 && f[0] == s.u.master {
			s.switched(net.JoinHostPort(f[3], f[4]))
		}
	case channel == "+sentinel":
		if len(f) == 8 && f[0] == "sentinel" && f[5] == s.u.master {
			s.mu.Lock()
			s.addSentinelLocked(net.JoinHostPort(f[2], f[3]), false)
			s.mu.Unlock()
		}
	case len(f) < 2 || f[0] != "master" || f[1] != s.u.master:
	case strings.HasPrefix(channel, "-failover-abort-"):
		s.setFailing(w.addr, false)
	default: // +try-failover, +failover-state-*
		s.setFailing(w.addr, true)
	}
}
