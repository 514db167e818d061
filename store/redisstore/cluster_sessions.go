package redisstore

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/mna/redisc"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/format"
)

// The cluster store's scripts: each on the keys of one slot.
var (
	// mintIndexScript is a mint's step 1, in the user's slot (KEYS: index,
	// credentials hash, the credential's mark or the index when none,
	// continuations hash). It answers -1 if the mark holds the mark of an
	// ended session; otherwise it drops the expired entries, adds ARGV[1]
	// (expiry ARGV[2] ms, now ARGV[3] ms) with its credential ARGV[4] and
	// mark ARGV[5] ("" for none) and, when it continues a session, its
	// continuation record ARGV[6] (its padded nonce, then the continued
	// key; "" for none), and answers the other live entries with the same
	// credential as member, score pairs.
	mintIndexScript = newClusterScript(4, `
if KEYS[3] ~= KEYS[1] and redis.call('GET', KEYS[3]) == ENDED then return -1 end
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], '-inf', ARGV[3], 'BYSCORE')) do
  redis.call('HDEL', KEYS[2], m)
  redis.call('HDEL', KEYS[4], m)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local others = {}
if ARGV[4] ~= '' then
  local live = redis.call('ZRANGE', KEYS[1], '(' .. ARGV[3], '+inf', 'BYSCORE', 'WITHSCORES')
  for i = 1, #live, 2 do
    if live[i] ~= ARGV[1] then
      local v = redis.call('HGET', KEYS[2], live[i])
      if v and string.sub(v, 1, CRED_LEN) == ARGV[4] then
        table.insert(others, live[i])
        table.insert(others, live[i + 1])
      end
    end
  end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2], 'NX')
redis.call('PEXPIREAT', KEYS[1], ARGV[2], 'GT')
if ARGV[4] == '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4] .. ARGV[5])
  redis.call('PEXPIREAT', KEYS[2], ARGV[2], 'NX')
  redis.call('PEXPIREAT', KEYS[2], ARGV[2], 'GT')
end
if ARGV[6] == '' then
  redis.call('HDEL', KEYS[4], ARGV[1])
else
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[6])
  redis.call('PEXPIREAT', KEYS[4], ARGV[2], 'NX')
  redis.call('PEXPIREAT', KEYS[4], ARGV[2], 'GT')
end
return others`)

	// takeScript answers 1 if KEYS[1] holds the live session minted with
	// nonce ARGV[1], and then deletes it when ARGV[2] is "1"; 0 otherwise.
	// A mint's step 2 (the continued session) and a Replaced end.
	takeScript = newClusterScript(1, `
local cur = redis.call('GET', KEYS[1])
if not cur or string.sub(cur, 1, 1) ~= LIVE or string.sub(cur, NONCE_AT + 1, CRED_AT) ~= ARGV[1] then return 0 end
if ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
return 1`)

	// writeScript is a mint's step 3: it writes ARGV[1] at KEYS[1] for
	// ARGV[2] ms if the key still holds exactly ARGV[3] ("" for nothing),
	// and answers 1; 0 otherwise. A key that holds ARGV[1] already (its
	// nonce and validator are the mint's own) answers 1: the write run
	// again after its answer was lost, or its primary was demoted.
	writeScript = newClusterScript(1, `
local cur = redis.call('GET', KEYS[1]) or ''
if cur == ARGV[1] then return 1 end
if cur ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`)

	// fenceScript is a mint's step 4 for another session of the same
	// credential ARGV[1]: a live one is deleted; an absent key (a mint
	// between its steps 1 and 3), or one that holds garbage (an older
	// fence that mint may have seen), gets a fence of its own (FENCE,
	// then the tag ARGV[3], unique to the call) for ARGV[2] ms, so that
	// mint's step 3, which compares the whole value, fails. It answers 1
	// when it did either.
	fenceScript = newClusterScript(1, `
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, 1) == LIVE then
  if string.sub(cur, CRED_AT + 1, CRED_AT + CRED_LEN) ~= ARGV[1] then return 0 end
  redis.call('DEL', KEYS[1])
  return 1
end
if cur == ENDED then return 0 end
redis.call('SET', KEYS[1], FENCE .. ARGV[3], 'PX', ARGV[2])
return 1`)

	// continuationFenceScript is an end's last step for a session that
	// continues the ended one (a mint between its steps 1 and 4) at
	// KEYS[1]: unless the key holds that continuation (live with the
	// nonce ARGV[1], padded), which the caller's heir search finds and
	// ends, or an ended session, it gets a fence (FENCE, then the tag
	// ARGV[3]) for ARGV[2] ms, so that the mint's step 3 fails. It
	// answers 1 when it fenced.
	continuationFenceScript = newClusterScript(1, `
local cur = redis.call('GET', KEYS[1])
if cur == ENDED or cur and string.sub(cur, 1, 1) == LIVE and string.sub(cur, NONCE_AT + 1, CRED_AT) == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], FENCE .. ARGV[3], 'PX', ARGV[2])
return 1`)

	// clusterPageScript is pageScript (List's index read), on the user's
	// slot.
	clusterPageScript = newClusterScript(1, pageLua)

	// indexScript updates the user's index (KEYS[1]), credentials hash
	// (KEYS[2]) and continuations hash (KEYS[3]): it removes each member
	// ARGV[5], ARGV[7], ... whose score is still ARGV[6], ARGV[8], ... (""
	// for any score), then (re-)adds ARGV[1] (unless "") with expiry
	// ARGV[2] ms and hash value ARGV[3] ("" for none), and drops its
	// continuation record (its session is written). Last, it answers the
	// members whose continuation records name the key ARGV[4] (unless
	// ""), each with its nonce and its score ("" when not indexed).
	indexScript = newClusterScript(3, `
for i = 5, #ARGV, 2 do
  if ARGV[i + 1] == '' or redis.call('ZSCORE', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
    redis.call('HDEL', KEYS[3], ARGV[i])
  end
end
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  redis.call('PEXPIREAT', KEYS[1], ARGV[2], 'NX')
  redis.call('PEXPIREAT', KEYS[1], ARGV[2], 'GT')
  if ARGV[3] ~= '' then
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
    redis.call('PEXPIREAT', KEYS[2], ARGV[2], 'NX')
    redis.call('PEXPIREAT', KEYS[2], ARGV[2], 'GT')
  end
  redis.call('HDEL', KEYS[3], ARGV[1])
end
local out = {}
if ARGV[4] ~= '' then
  local all = redis.call('HGETALL', KEYS[3])
  for i = 1, #all, 2 do
    if string.sub(all[i + 1], CRED_AT - NONCE_AT + 1) == ARGV[4] then
      table.insert(out, all[i])
      table.insert(out, string.sub(all[i + 1], 1, CRED_AT - NONCE_AT))
      table.insert(out, redis.call('ZSCORE', KEYS[1], all[i]) or '')
    end
  end
end
return out`)

	// endIndexScript is an end's step a, in the user's slot (KEYS: index,
	// credentials hash, the credential's mark or the index when none): it
	// answers the score of ARGV[1] ("" when absent); with a mark, it first
	// sets the mark (ended, for ARGV[2] ms) and answers too the other
	// entries of that mark (ARGV[3]), each with its score.
	endIndexScript = newClusterScript(3, `
local out = {redis.call('ZSCORE', KEYS[1], ARGV[1]) or ''}
if KEYS[3] ~= KEYS[1] then
  redis.call('SET', KEYS[3], ENDED, 'PX', ARGV[2])
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    if all[i] ~= ARGV[1] and string.sub(all[i + 1], CRED_LEN + 1) == ARGV[3] then
      table.insert(out, all[i])
      table.insert(out, redis.call('ZSCORE', KEYS[1], all[i]) or '')
    end
  end
end
return out`)

	// limitEndScript is a mint's step 5 for one session beyond the limit:
	// if KEYS[1] still holds the live session whose frame starts with
	// ARGV[1] (its verifier and nonce: that very session, whatever Touch
	// wrote since), its key keeps the mark of an ended session for its
	// remaining TTL, and the script answers what it held; else nil.
	limitEndScript = newClusterScript(1, `
local cur = redis.call('GET', KEYS[1])
if not cur or string.sub(cur, 1, CRED_AT) ~= ARGV[1] then return false end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('SET', KEYS[1], ENDED, 'PX', ttl) else redis.call('DEL', KEYS[1]) end
return cur`)
)

// Mint writes a session in four steps (five with a limit), each a script on one slot, in an
// order that keeps the single store's guarantees when processes race and
// when one stops between any two steps:
//
//  1. In the user's slot: refused (ErrSignedOut) if the credential's mark
//     is set; else the session's index entry (and credential) is added,
//     with, for a continuation, the record that it continues that key
//     (sg:k:{U}: its nonce and the continued key), and the other entries
//     of the same credential are read.
//  2. With a session to continue: it is deleted if it is still live with
//     its nonce, else ErrNotContinued (the engine then mints without it;
//     the index entry stays, and expires by its score).
//  3. At the session's key: the session is written if the key still holds
//     what the caller saw, else ErrConflict.
//  4. The other sessions of the credential: each is deleted if live with
//     it, or fenced if absent or garbled (a mint between its steps 1 and
//     3: its step 3 then fails); then they, and the continued session, leave the
//     index, and the session's own entry is written again (a listing that
//     pruned it while the key held an ended or garbled value before step
//     3 does not lose it), its continuation record dropped.
//  5. With m.Limit: the user's index is read (its live entries), then
//     each of its sessions (one pipeline per node); of the live ones but
//     the new, the least recently used beyond Limit.Max (format.
//     RecordLastSeen; an unreadable record first; ties by key) are
//     ended, each by a script on its own slot that marks its key ended
//     (for its remaining TTL) only if it still holds that live session
//     (verifier and nonce); then they leave the index. Limit.Ended
//     reports those the scripts ended, and no other.
//
// One session per credential: of two concurrent mints of one credential,
// the later step 1 sees the earlier's entry and ends that session, or
// fences its key before it is written; never both survive. Logout means
// logout: a sign-out sets the credential's mark before it reads the
// index, so a mint whose step 1 came first is in the index and its key is
// marked ended, and one whose step 1 came after is refused. A crash after
// step 1 leaves an index entry of an absent session, which listings skip
// (and never prune: see List); after step 2, the continued session is
// gone, as its continuation would have ended it; after step 3, the
// session is live and listed, and another session of the credential may
// stay live until the next mint of the credential.
//
// A device that signs out does not come back as a continuation. End's
// last step, in the user's slot after the ended key is marked, answers
// the continuation records of that key, and fences each of their keys
// that does not hold its continuation (see End). If the end marks the
// continued key before step 2, step 2 fails: ErrNotContinued, and the
// engine mints a new device. Otherwise step 1 < step 2 < the end's mark
// < the end's last step, so that step sees the record (only step 4, after
// step 3, drops it): either step 3 came first, and the continuation is
// live and indexed, which the engine's heir search (List, after End)
// finds by its public id and ends; or the fence came first, and step 3
// fails (ErrConflict: the engine finds the fence and answers 503; the
// client's retry, its session ended, mints a new device). Both outcomes
// are those of a single Redis. The heir search by credential needs no
// record of its own: step 1 reads the credential's mark and writes the
// entry with it, an end sets the mark and reads those entries, both in
// the user's slot: of the two, the later sees the earlier.
//
// The limit is not atomic with the mint, as it is on one Redis: it is
// counted after the session is written, from reads on several nodes.
// Between a mint's step 3 and its step 5 the user has one live session
// more than Max; two mints that run at once may each count the other's
// session and each end one, so a race can end one session more than the
// limit needed (the user keeps fewer than Max). It never leaves more
// than Max: of the mints whose sessions stay live, the one that read
// last found every other of them written and live, and ended enough of
// what it found (what it could not end was already ended). That holds
// for the mints that returned nil; a mint that fails or stops after its
// step 3 leaves its session live, uncounted, until the user's next mint
// with a limit counts it. A crash between a session's end mark and its
// leaving the index leaves an entry that listings drop.
//
// A mint with a credential mark first reads the mark where the single
// store keeps it (sg:s:<mark>), so that marks written before a move from
// a single Redis still refuse their credential.
func (c *clusterStore) Mint(ctx context.Context, m backend.NewSession) error {
	if !m.Valid() {
		return backend.ErrBadMint
	}
	ttl := ttlUntil(m.Expires)
	if ttl <= 0 {
		return backend.ErrExpired
	}
	ctx, cancel := c.operation(ctx)
	defer cancel()
	if m.Mark != "" {
		raw, err := c.get(ctx, c.sessionKey(m.Mark))
		if err != nil {
			return err
		}
		if format.Parse(raw).Ended {
			return backend.ErrSignedOut
		}
	}
	others, err := c.mintIndex(ctx, m)
	if err != nil {
		return err
	}
	if err := c.mintContinue(ctx, m); err != nil {
		return err
	}
	if err := c.mintWrite(ctx, m); err != nil {
		return err
	}
	if err := c.mintFinish(ctx, m, others); err != nil {
		return err
	}
	return c.mintLimit(ctx, m)
}

// credValue is what the credentials hash keeps for m: its credential id
// and its mark, "" for none.
func credValue(m backend.NewSession) string {
	if m.Credential == (format.Credential{}) {
		return ""
	}
	return string(m.Credential[:]) + m.Mark
}

// mintIndex is Mint's step 1: it answers the other entries of m's
// credential as member, score pairs.
func (c *clusterStore) mintIndex(ctx context.Context, m backend.NewSession) ([]string, error) {
	key := format.KeyOf(m.Token)
	mark := c.indexKey(m.User)
	if m.Mark != "" {
		mark = c.markKey(m.User, m.Mark)
	}
	cred := ""
	if m.Credential != (format.Credential{}) {
		cred = string(m.Credential[:])
	}
	cont := ""
	if m.Continues != nil {
		cont = string(format.PadNonce(m.Nonce)) + m.Continues.Key
	}
	reply, err := c.evalDurable(ctx, mintIndexScript, []string{c.indexKey(m.User), c.credsKey(m.User), mark, c.contsKey(m.User)},
		key, m.Expires.UnixMilli(), time.Now().UnixMilli(), cred, m.Mark, cont)
	if err != nil {
		return nil, err
	}
	if n, ok := reply.(int64); ok && n == -1 {
		return nil, backend.ErrSignedOut
	}
	others, err := redis.Strings(reply, nil)
	if err != nil {
		return nil, unavailable(err)
	}
	return others, nil
}

// mintContinue is Mint's step 2.
func (c *clusterStore) mintContinue(ctx context.Context, m backend.NewSession) error {
	cont := m.Continues
	if cont == nil {
		return nil
	}
	del := "1"
	if cont.Key == format.KeyOf(m.Token) {
		del = "0" // step 3 replaces it, if it is still what the caller saw
	}
	done, err := redis.Int(c.eval(ctx, takeScript, []string{c.sessionKey(cont.Key)}, format.PadNonce(cont.Nonce), del))
	switch {
	case err != nil:
		return err
	case done != 1:
		return backend.ErrNotContinued
	}
	return nil
}

// mintWrite is Mint's step 3.
func (c *clusterStore) mintWrite(ctx context.Context, m backend.NewSession) error {
	sel, val, _ := format.Split(m.Token)
	value := format.Frame(val, m.Nonce, m.Credential, m.Record, m.Data)
	ttl := ttlUntil(m.Expires)
	if ttl <= 0 {
		return nil
	}
	done, err := redis.Int(c.evalDurable(ctx, writeScript, []string{c.sessionKey(sel.Key())}, value, ttl, m.Replace.Raw()))
	switch {
	case err != nil:
		return err
	case done != 1:
		return backend.ErrConflict
	}
	return nil
}

// mintFinish is Mint's step 4, given step 1's other entries of the
// credential. It tries every part, and returns the first error.
func (c *clusterStore) mintFinish(ctx context.Context, m backend.NewSession, others []string) error {
	var first error
	drop := []any{}
	now := time.Now().UnixMilli()
	for i := 0; i+1 < len(others); i += 2 {
		member, score := others[i], others[i+1]
		px := parseScore(score) - now
		if px <= 0 {
			continue
		}
		done, err := redis.Int(c.evalDurable(ctx, fenceScript, []string{c.sessionKey(member)}, m.Credential[:], px, fenceTag()))
		if err != nil {
			first = firstErr(first, err)
			continue
		}
		if done == 1 {
			drop = append(drop, member, score)
		}
	}
	key := format.KeyOf(m.Token)
	if cont := m.Continues; cont != nil && cont.Key != key {
		drop = append(drop, cont.Key, "")
	}
	args := append([]any{key, m.Expires.UnixMilli(), credValue(m), ""}, drop...)
	if _, err := c.eval(ctx, indexScript, c.userKeys(m.User), args...); err != nil {
		first = firstErr(first, err)
	}
	return first
}

// mintLimit is Mint's step 5.
func (c *clusterStore) mintLimit(ctx context.Context, m backend.NewSession) error {
	l := m.Limit
	if l == nil || l.Max <= 0 {
		return nil
	}
	members, err := redis.Strings(c.command(ctx, "ZRANGE", c.indexKey(m.User), time.Now().UnixMilli(), "+inf", "BYSCORE", "WITHSCORES"))
	if err != nil {
		return unavailable(err)
	}
	self := format.KeyOf(m.Token)
	type candidate struct {
		member, score string
		seen          time.Time
		raw           []byte
	}
	var keys []string
	var indexed []candidate
	for i := 0; i+1 < len(members); i += 2 {
		if members[i] != self {
			indexed = append(indexed, candidate{member: members[i], score: members[i+1]})
			keys = append(keys, c.sessionKey(members[i]))
		}
	}
	raws, err := c.getAll(ctx, keys)
	if err != nil {
		return err
	}
	var live []candidate
	for i, cd := range indexed {
		s := format.Parse(raws[i])
		if !s.Live() {
			continue // ended, or a mint between its steps 1 and 3: not a live session
		}
		cd.seen, _ = format.RecordLastSeen(s.Record) // unreadable: the zero time, first
		cd.raw = raws[i]
		live = append(live, cd)
	}
	slices.SortFunc(live, func(a, b candidate) int {
		if n := a.seen.Compare(b.seen); n != 0 {
			return n
		}
		return strings.Compare(a.member, b.member)
	})
	var (
		first error
		ended []backend.Entry
		drop  []any
	)
	for i := 0; len(live)-i+1 > l.Max; i++ {
		cd := live[i]
		raw, err := c.evalDurable(ctx, limitEndScript, []string{c.sessionKey(cd.member)}, cd.raw[:format.CredAt])
		if err != nil {
			first = firstErr(first, err)
			continue
		}
		if raw == nil {
			continue // ended, continued or replaced meanwhile: by someone else
		}
		was, err := redis.Bytes(raw, nil)
		if err != nil {
			first = firstErr(first, unavailable(err))
			continue
		}
		ended = append(ended, backend.Entry{Key: cd.member, Stored: format.Parse(was)})
		drop = append(drop, cd.member, cd.score)
	}
	if len(drop) > 0 {
		args := append([]any{"", "", "", ""}, drop...)
		if _, err := c.eval(ctx, indexScript, c.userKeys(m.User), args...); err != nil {
			first = firstErr(first, err)
		}
	}
	l.Ended = ended
	return first
}

// End ends each session in three steps, tries every step of every
// ending, and returns the first error:
//
//  1. With a credential mark: in the user's slot, the mark is set, and
//     the other entries of that credential are read; each of their keys
//     (live, or of a mint between its steps 1 and 3) is marked ended,
//     with the mark where the single store keeps it. A mint whose mark
//     check came before the mark is in the index and so is ended; one
//     after it is refused.
//  2. The session's key is marked ended (deleted when Until has passed),
//     or, Replaced, deleted only if it holds the live session minted with
//     Nonce.
//  3. In the user's slot: the ended entries leave the index, each only if
//     its score is still the one step 1 read (a session minted anew at
//     the key meanwhile stays listed); and, but for a Replaced end, the
//     continuation records of the ended key are read (mints that
//     continue it, between their steps 1 and 4). Each of their keys that
//     holds neither that continuation (live, with its nonce: the
//     engine's heir search finds it) nor an ended session is fenced
//     until the entry's expiry, so that the mint's step 3 fails (see
//     Mint for why this step sees every continuation that could still
//     be written).
//
// The mark comes first: a crash after it leaves the session live, and
// the caller, who got an error, signs out again.
func (c *clusterStore) End(ctx context.Context, ends ...backend.Ending) error {
	if len(ends) == 0 {
		return nil
	}
	ctx, cancel := c.operation(ctx)
	defer cancel()
	var first error
	for _, e := range ends {
		first = firstErr(first, c.endOne(ctx, e))
	}
	return first
}

// endOne ends one session.
func (c *clusterStore) endOne(ctx context.Context, e backend.Ending) error {
	var first error
	// The writes wait for a replica's acknowledgement, but on a node
	// whose replica already failed to acknowledge one: the rest are still
	// written there (a continuation must be fenced) without waiting, so
	// that the end's deadline is not spent on a replica known stalled,
	// while the other nodes' writes are still confirmed. End then returns
	// errNotReplicated.
	stalled := map[string]bool{}
	durable := func(key string) bool { return !stalled[c.primary(redisc.Slot(key))] }
	note := func(err error, key string) {
		if errors.Is(err, errNotReplicated) {
			stalled[c.primary(redisc.Slot(key))] = true
		}
		first = firstErr(first, err)
	}
	ttl := ttlUntil(e.Until)
	marked := e.Mark != "" && ttl > 0 && !e.Replaced
	var (
		indexed bool
		score   string
		others  []string
	)
	if e.User != "" {
		mark := c.indexKey(e.User)
		if marked {
			mark = c.markKey(e.User, e.Mark)
		}
		// Only a mark is a write to wait for.
		raw, err := c.evalOn(ctx, marked && durable(c.indexKey(e.User)), endIndexScript, []string{c.indexKey(e.User), c.credsKey(e.User), mark}, e.Key, ttl, e.Mark)
		reply, rerr := redis.Strings(raw, nil)
		if !landed(err) || rerr != nil || len(reply) == 0 {
			first = firstErr(first, unavailable(firstErr(err, errors.New("unexpected reply"))))
		} else {
			note(err, c.indexKey(e.User))
			indexed, score, others = true, reply[0], reply[1:]
		}
	}
	var drop []any
	if marked {
		_, err := c.commandOn(ctx, durable(c.sessionKey(e.Mark)), "SET", c.sessionKey(e.Mark), format.Ended, "PX", ttl)
		note(err, c.sessionKey(e.Mark))
		for i := 0; i+1 < len(others); i += 2 {
			_, err := c.commandOn(ctx, durable(c.sessionKey(others[i])), "SET", c.sessionKey(others[i]), format.Ended, "PX", ttl)
			note(err, c.sessionKey(others[i]))
			if !landed(err) {
				continue
			}
			drop = append(drop, others[i], others[i+1])
		}
	}
	removed := true
	switch {
	case e.Replaced:
		done, err := redis.Int(c.eval(ctx, takeScript, []string{c.sessionKey(e.Key)}, format.PadNonce(e.Nonce), "1"))
		removed = err == nil && done == 1
		first = firstErr(first, err)
	case ttl > 0:
		_, err := c.commandOn(ctx, durable(c.sessionKey(e.Key)), "SET", c.sessionKey(e.Key), format.Ended, "PX", ttl)
		removed = landed(err)
		note(err, c.sessionKey(e.Key))
	default:
		_, err := c.commandOn(ctx, durable(c.sessionKey(e.Key)), "DEL", c.sessionKey(e.Key))
		removed = landed(err)
		note(err, c.sessionKey(e.Key))
	}
	if removed && score != "" {
		drop = append(drop, e.Key, score)
	}
	// Continuations are looked for only after the key is marked (see
	// End); a replaced session has none to stop (its device changed user).
	cont := ""
	if removed && !e.Replaced {
		cont = e.Key
	}
	if indexed && (len(drop) > 0 || cont != "") {
		args := append([]any{"", "", "", cont}, drop...)
		reply, err := redis.Strings(c.eval(ctx, indexScript, c.userKeys(e.User), args...))
		if err != nil {
			first = firstErr(first, unavailable(err))
		}
		first = firstErr(first, c.fenceContinuations(ctx, reply, ttl, durable))
	}
	return first
}

// landed reports whether a write that returned err ran on its primary:
// it succeeded, or only its replica's acknowledgement is missing
// (errNotReplicated). The steps after it go on as if it had succeeded (a
// continuation of a session marked ended must still be fenced); End still
// returns the error, so the caller knows the end is not yet durable.
func landed(err error) bool {
	return err == nil || errors.Is(err, errNotReplicated)
}

// fenceContinuations is End's last step for the sessions that continue
// an ended one, given as member, nonce, score triples: each key that
// does not hold its continuation (a mint between its steps 2 and 3) is
// fenced until the entry's expiry (or for ttl ms, the end's mark, when
// the entry is gone), so that its write fails.
func (c *clusterStore) fenceContinuations(ctx context.Context, conts []string, ttl int64, durable func(key string) bool) error {
	var first error
	now := time.Now().UnixMilli()
	for i := 0; i+2 < len(conts); i += 3 {
		member, nonce, score := conts[i], conts[i+1], conts[i+2]
		px := max(ttl, 1)
		if score != "" {
			px = max(parseScore(score)-now, 1)
		}
		if _, err := c.evalOn(ctx, durable(c.sessionKey(member)), continuationFenceScript, []string{c.sessionKey(member)}, nonce, px, fenceTag()); err != nil {
			first = firstErr(first, err)
		}
	}
	return first
}

// List returns a page of user's index, latest expiry first: the page's
// entries from the index (pageScript, on the user's slot: one command),
// then their sessions, with one pipeline of GETs per node (getAll). An
// entry whose key holds the mark of an ended session, or garbage, leaves
// the index (only if its score is unchanged); one whose key is absent
// stays, since a mint may be between its steps 1 and 3: it expires with
// its score.
func (c *clusterStore) List(ctx context.Context, user string, after backend.Position, limit int) ([]backend.Entry, backend.Position, error) {
	ctx, cancel := c.operation(ctx)
	defer cancel()
	limit = max(limit, 1)
	read, err := indexEntries(redis.Strings(c.eval(ctx, clusterPageScript, []string{c.indexKey(user)}, pageArgs(after, limit)...)))
	if err != nil {
		return nil, backend.Position{}, unavailable(err)
	}
	page, more := backend.Window(read, limit)
	keys := make([]string, len(page))
	for i, e := range page {
		keys[i] = c.sessionKey(e.Key)
	}
	raws, err := c.getAll(ctx, keys)
	if err != nil {
		return nil, backend.Position{}, err
	}
	var (
		entries = make([]backend.Entry, 0, len(page))
		gone    []any
	)
	for i, e := range page {
		switch s := format.Parse(raws[i]); {
		case s.Live():
			entries = append(entries, backend.Entry{Key: e.Key, Stored: s})
		case s.Found():
			gone = append(gone, e.Key, strconv.FormatInt(e.Expires, 10))
		}
	}
	if len(gone) > 0 {
		// Best effort: a failure leaves entries a later call drops.
		c.eval(ctx, indexScript, c.userKeys(user), append([]any{"", "", "", ""}, gone...)...)
	}
	return entries, backend.Next(page, more), nil
}

// parseScore reads a score Redis answered (ms).
func parseScore(s string) int64 {
	f, _ := strconv.ParseFloat(s, 64)
	return int64(f)
}

// firstErr returns first if it is set, else err.
func firstErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
