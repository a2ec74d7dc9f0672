package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/clade-gateway/clade-gateway/internal/budget"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

// Reserve implements Store.
func (s *Store) Reserve(ctx context.Context, h budget.Hold) (budget.Reservation, error) {
	start := time.Now()
	a, err := budget.PrepareHold(h, s.opts.Clock(), s.opts.DefaultTTL)
	if err != nil {
		s.metrics.Observe("reserve", start, err)
		return budget.Reservation{}, err
	}
	return s.reserve(ctx, a, start)
}

// reserve places the prepared hold a, one reserve.lua call (none for a
// hold on no budget), and observes it as begun at start.
func (s *Store) reserve(ctx context.Context, a budget.PreparedHold, start time.Time) (r budget.Reservation, err error) {
	defer func() { s.metrics.Observe("reserve", start, err) }()
	h, now := a.Hold, a.Now
	if len(a.Keys) == 0 {
		return budget.Reservation{RequestID: h.RequestID, Amount: h.Amount}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()

	keys := s.keys.scriptKeys(h.RequestID, a.Keys)
	args := make([]any, 0, 11+4*len(a.Keys))
	args = append(args, "", ms(now), h.RequestID, int64(h.Amount), ms(a.Expiry),
		msOf(a.Expiry.Sub(now)+budget.SettledTTL), a.KeysJoin)
	for i, b := range h.Budgets {
		args = append(args, int64(b.Limit), boolArg(b.Enforce), secsOf(b.WindowKeyTTL(a.Ends[i], now)), string(b.Scope))
	}
	if f := h.Fit; f.Active() {
		args = append(args, int64(f.Fixed), int64(f.PerUnit), f.Min, f.Max)
	}
	var rep reserveReply
	err = s.withEpoch(ctx, func(epoch string) (*string, error) {
		args[0] = epoch
		v, err := s.run(ctx, s.scripts.reserve, keys, args...)
		if err != nil {
			return nil, err
		}
		rep, err = parseReserveReply(v, len(a.Keys))
		return rep.reset, err
	})
	if err != nil {
		if releaseNow(err) {
			s.bg.Add(1)
			go s.release(h.RequestID, a.Keys)
		}
		return budget.Reservation{}, fmt.Errorf("budget: reserve %q: %w", h.RequestID, err)
	}
	s.metrics.Orphaned(rep.orphans)
	switch rep.tag {
	case "over":
		return budget.Reservation{}, a.Exceeded(rep.over, rep.levels[0])
	case "dup":
		return budget.Reservation{}, fmt.Errorf("%w: %q (its hold is %s)", budget.ErrDuplicate, h.RequestID, rep.state)
	}
	s.flight.Add(h.RequestID, a.Expiry)
	return a.Placed(rep.amount, rep.levels), nil
}

// releaseNow reports whether a failed call may have run in Redis (anything
// but a server error reply) while Redis may still take a release now. A
// dial error is no proof that nothing ran, since go-redis retries a call
// whose reply was lost and returns the retry's error; but then Redis is
// unreachable and a release would fail too, while its dials count toward
// go-redis's dial-error breaker (pool size failures make the pool refuse
// for up to a second after Redis is back). The caller's journaled release
// (see proxy) frees such a hold once Redis returns.
func releaseNow(err error) bool {
	if !errors.Is(err, budget.ErrUnavailable) || errors.Is(err, budget.ErrStoreReset) {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return false
	}
	var oerr *net.OpError
	return !errors.As(err, &oerr) || oerr.Op != "dial"
}

// release cancels a reserve whose reply was lost: a hold it may have placed
// is freed now rather than charged its estimate at expiry, and a delayed
// execution of it finds the "released" marker and places nothing. A later
// Settle of the same request ID (on_store_failure=allow forwarded it
// without a reservation) is still charged in full.
// It runs in the background so Reserve still returns within the timeout;
// if the store is still unreachable the hold's lease is the backstop.
func (s *Store) release(id string, windows []string) {
	defer s.bg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	if err := s.settle(ctx, budget.Reservation{RequestID: id, Keys: windows}, 0, "release"); err != nil {
		s.opts.Logger.Warn("cannot release a reservation whose reply was lost; its lease will expire and charge its estimate",
			zap.String("request_id", id), zap.Error(err))
	}
}

// Settle implements Store.
func (s *Store) Settle(ctx context.Context, r budget.Reservation, actual money.Nanos) (err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("settle", start, err) }()
	if err := budget.CheckSettle(r, actual); err != nil {
		return err
	}
	if len(r.Keys) == 0 && len(r.Ledger) == 0 {
		s.flight.Remove(r.RequestID)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	if err := s.settles.do(ctx, r, actual); err != nil {
		return fmt.Errorf("budget: settle %q: %w", r.RequestID, err)
	}
	s.flight.Remove(r.RequestID)
	return nil
}

// settle settles one request, in mode "settle" or "release", following its
// hold to the windows it was placed on and adopting an epoch another
// gateway's Reinit wrote.
func (s *Store) settle(ctx context.Context, r budget.Reservation, actual money.Nanos, mode string) error {
	item := []settleItem{{id: r.RequestID, windows: r.Keys, actual: actual, mode: mode, ledger: r.Ledger}}
	for try := 0; try < 2; try++ {
		var rep settleReply
		err := s.withEpoch(ctx, func(epoch string) (*string, error) {
			replies, reset, err := s.runSettle(ctx, epoch, item)
			if err != nil || reset != nil {
				return reset, err
			}
			rep, err = parseSettleReply(replies[0], len(item[0].windows), actual)
			return nil, err
		})
		if err != nil {
			return err
		}
		if rep.tag == "keys" {
			item[0].windows = rep.keys
			continue
		}
		s.metrics.Settled(rep.effects)
		return nil
	}
	return fmt.Errorf("%w: hold %q moved between windows twice", budget.ErrUnavailable, r.RequestID)
}

// Extend implements Store. Extending a hold that has expired (and was
// charged as an orphan), was settled, or is unknown does nothing.
func (s *Store) Extend(ctx context.Context, r budget.Reservation, ttl time.Duration) (err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("extend", start, err) }()
	if ttl, err = budget.LeaseFor(r, ttl, s.opts.DefaultTTL); err != nil || len(r.Keys) == 0 {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	windows := r.Keys
	for try := 0; try < 2; try++ {
		now := s.opts.Clock()
		exp := now.Add(ttl)
		keys := s.keys.scriptKeys(r.RequestID, windows)
		args := []any{"", ms(now), r.RequestID, ms(exp), msOf(ttl + budget.SettledTTL), joinKeys(windows)}
		var rep extendReply
		err := s.withEpoch(ctx, func(epoch string) (*string, error) {
			args[0] = epoch
			v, err := s.run(ctx, s.scripts.extend, keys, args...)
			if err != nil {
				return nil, err
			}
			rep, err = parseExtendReply(v)
			return rep.reset, err
		})
		if err != nil {
			return fmt.Errorf("budget: extend %q: %w", r.RequestID, err)
		}
		s.metrics.Orphaned(rep.orphans)
		switch rep.tag {
		case "keys":
			windows = rep.keys
			continue
		case "ok":
			s.flight.Extend(r.RequestID, exp)
		default:
			s.flight.Remove(r.RequestID)
		}
		return nil
	}
	return fmt.Errorf("budget: extend %q: %w: hold moved between windows twice", r.RequestID, budget.ErrUnavailable)
}

// Status implements Store.
func (s *Store) Status(ctx context.Context, budgets []budget.Budget) (st []budget.Status, err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("status", start, err) }()
	if len(budgets) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	now := s.opts.Clock()
	windows := make([]string, len(budgets))
	for i, b := range budgets {
		windows[i] = b.Key(now)
	}
	keys := s.keys.scriptKeys("", windows)
	var rep statusReply
	err = s.withEpoch(ctx, func(epoch string) (*string, error) {
		v, err := s.run(ctx, s.scripts.status, keys, epoch, ms(now))
		if err != nil {
			return nil, err
		}
		rep, err = parseStatusReply(v, len(windows))
		return rep.reset, err
	})
	if err != nil {
		return nil, fmt.Errorf("budget: status: %w", err)
	}
	s.metrics.Orphaned(rep.orphans)
	st = make([]budget.Status, len(budgets))
	for i, b := range budgets {
		st[i] = budget.StatusOf(b, now, rep.levels[i])
	}
	return st, nil
}

// adjustMarkerTTL bounds how long a retried Adjust is recognised.
const adjustMarkerTTL = 24 * time.Hour

// Adjust implements Store. Each call is applied once even if go-redis
// retries it after a lost reply.
func (s *Store) Adjust(ctx context.Context, b budget.Budget, delta money.Nanos) (err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("adjust", start, err) }()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	now := s.opts.Clock()
	_, end := b.Window(now)
	var op [12]byte
	_, _ = rand.Read(op[:])
	keys := []string{s.keys.epoch(), s.keys.window(b.Key(now)), s.keys.adjustOp(hex.EncodeToString(op[:]))}
	err = s.withEpoch(ctx, func(epoch string) (*string, error) {
		v, err := s.run(ctx, s.scripts.adjust, keys, epoch, int64(delta),
			secsOf(budget.WindowKeyTTL(end, now)), secsOf(adjustMarkerTTL), int64(budget.MaxWindowSpend))
		if err != nil {
			return nil, err
		}
		rep, err := parseAdjustReply(v)
		return rep.reset, err
	})
	if err != nil {
		return fmt.Errorf("budget: adjust %s by %s: %w", b.Label(), delta, err)
	}
	return nil
}

// Ping implements Store: it fails with ErrStoreReset when the store lost
// its data, and with ErrUnavailable when it cannot be reached.
func (s *Store) Ping(ctx context.Context) (err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("ping", start, err) }()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	return s.withEpoch(ctx, func(epoch string) (*string, error) {
		stored, err := (*epochs)(s).Load(ctx)
		if err != nil || stored == epoch {
			return nil, err
		}
		return &stored, nil
	})
}

// Reinit writes a fresh epoch after a data loss: an operator's decision to
// count caps from what the store holds now (after a loss, from zero). It
// deletes nothing. Other gateways adopt the new epoch on their next call.
func (s *Store) Reinit(ctx context.Context) (err error) {
	start := time.Now()
	defer func() { s.metrics.Observe("reinit", start, err) }()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	if err := s.epoch.Reinit(ctx, (*epochs)(s)); err != nil {
		return fmt.Errorf("budget: reinit: %w", err)
	}
	return nil
}

// Close waits for background releases (at most one Timeout) and returns.
// It does not close the Redis client, which the caller created and may
// share: close the store first, then the client.
func (s *Store) Close() error {
	s.bg.Wait()
	s.settles.wait()
	return nil
}

func joinKeys(keys []string) string {
	n := 0
	for _, k := range keys {
		n += len(k) + 1
	}
	b := make([]byte, 0, n)
	for i, k := range keys {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, k...)
	}
	return string(b)
}
