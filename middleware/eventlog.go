package middleware

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/sessiongate/sessiongate/internal/backend"
)

// eventLog is the middleware's log (Config.Logger), made from its events:
// one line per sign-in and per session ended (INFO), per reuse and per
// refusal (DEBUG), per token the provider rejected (INFO), per lockout
// (WARN); an outage of the provider (WARN) or of the store (ERROR) at
// most once a second, with how often it happened since.
type eventLog struct {
	logger                  *slog.Logger
	now                     func() time.Time
	burst                   int
	interval                time.Duration
	storeDown, providerDown everySecond
}

func newEventLog(cfg Config) *eventLog {
	return &eventLog{logger: cfg.Logger, now: cfg.Now, burst: cfg.GuessBurst, interval: cfg.GuessInterval}
}

// reused logs the reuse of session (one per request): LogAttrs
// allocates nothing when DEBUG is off.
func (l *eventLog) reused(ctx context.Context, session string) {
	l.logger.LogAttrs(ctx, slog.LevelDebug, "sessiongate: session reused", slog.String("session", session))
}

func (l *eventLog) log(ctx context.Context, e *Event) {
	switch e.Kind {
	case EventReused:
		l.reused(ctx, e.SessionID)
	case EventMinted:
		l.logger.InfoContext(ctx, "sessiongate: session minted", "session", e.SessionID, "provider", e.Provider, "user", e.UserID,
			"expires", e.Expires, "continued", e.Reason == ReasonContinued)
	case EventEnded:
		l.logger.InfoContext(ctx, "sessiongate: session ended", "why", string(e.Reason), "session", e.SessionID, "user", e.UserID)
	case EventRejected:
		switch e.Reason {
		case ReasonMalformed:
			l.logger.DebugContext(ctx, "sessiongate: malformed frontend token refused")
		case ReasonCrossOrigin:
			l.logger.DebugContext(ctx, "sessiongate: cross-origin request refused")
		default:
			l.logger.DebugContext(ctx, "sessiongate: frontend token refused", "reason", e.Err)
		}
	case EventUpstream:
		switch {
		case e.Err == nil:
		case e.Reason == ReasonUnavailable:
			if n, ok := l.providerDown.due(l.now()); ok {
				l.logger.WarnContext(ctx, "sessiongate: provider unavailable; logged at most once a second", "provider", e.Provider, "error", e.Err, "since_last_logged", n)
			}
		default:
			l.logger.InfoContext(ctx, "sessiongate: token rejected", "provider", e.Provider, "error", e.Err)
		}
	case EventStoreError:
		if n, ok := l.storeDown.due(l.now()); ok {
			l.logger.ErrorContext(ctx, "sessiongate: session store unavailable; logged at most once a second", "error", e.Err, "since_last_logged", n)
		}
	case EventStoreWrite:
		// A store that was unavailable is EventStoreError's; a mint's
		// refusals are outcomes the exchange handles.
		if e.Err == nil || errors.Is(e.Err, backend.ErrUnavailable) || e.Reason == ReasonWriteMint {
			return
		}
		switch {
		case e.Reason == ReasonWriteValues && errors.Is(e.Err, backend.ErrNotLive):
			l.logger.WarnContext(ctx, "sessiongate: session values not saved: the session ended or was continued meanwhile", "session", e.SessionID)
		case e.Reason == ReasonWriteValues:
			l.logger.ErrorContext(ctx, "sessiongate: saving session values failed", "session", e.SessionID, "error", e.Err)
		case e.Reason == ReasonWriteTouch:
			l.logger.ErrorContext(ctx, "sessiongate: recording session activity failed", "session", e.SessionID, "error", e.Err)
		default:
			l.logger.ErrorContext(ctx, "sessiongate: ending sessions failed", "error", e.Err)
		}
	case EventClientLimited:
		l.logger.WarnContext(ctx, "sessiongate: client rate limited after failed credentials; logged once per lockout",
			"client", e.ClientIP, "burst", l.burst, "interval", l.interval)
	}
}
