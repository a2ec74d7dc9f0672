// Package epoch notices a budget store that lost its data. See Keeper.
package epoch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// An epoch names one lifetime of a store's data: "<generation>.<random>".
// The store keeps it next to the budgets, and each gateway remembers the
// one it saw (in memory, and in an epoch file). Every script compares
// the two, so a store that lost its data (Redis restarted without
// persistence, FLUSHALL, a deleted file) is noticed on the next call
// instead of silently admitting against counters that restarted at zero.
//
// Reinit is the operator's acknowledgement: it writes a new epoch with a
// higher generation, and caps are counted from what the store holds now
// (after a data loss: from zero). Other gateways adopt an epoch whose
// generation is higher than theirs, so one Reinit resumes the whole fleet;
// an equal or lower generation (a restore of an old backup, or a fresh
// gateway that created an epoch in an emptied store) is never adopted.

// Backend is the store-specific part: reading and writing the epoch
// as the store keeps it.
type Backend interface {
	Load(ctx context.Context) (string, error)
	// Create sets e only if the store has no epoch and returns
	// whichever epoch the store holds afterwards.
	Create(ctx context.Context, e string) (string, error)
	Store(ctx context.Context, e string) error
}

// Keeper is the epoch one store handle trusts.
type Keeper struct {
	file   string
	expect string
	log    *zap.Logger

	mu  sync.Mutex
	cur string // the epoch this process trusts; "" until first established
}

// New returns a Keeper that expects the epoch expect (any, when empty) and
// persists the one it trusts in file (nowhere, when empty).
func New(file, expect string, log *zap.Logger) (*Keeper, error) {
	if log == nil {
		log = zap.NewNop()
	}
	k := &Keeper{file: file, expect: expect, log: log}
	if k.file != "" {
		b, err := os.ReadFile(k.file)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("budget: read epoch file: %w", err)
		default:
			// The file is rewritten by Reinit; an ExpectEpoch from the
			// environment is not, so the newer generation wins.
			if f := strings.TrimSpace(string(b)); epochGen(f) >= epochGen(k.expect) {
				k.expect = f
			}
		}
	}
	return k, nil
}

func newEpoch(gen uint64) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return strconv.FormatUint(gen, 10) + "." + hex.EncodeToString(b[:])
}

func epochGen(e string) uint64 {
	g, _, _ := strings.Cut(e, ".")
	n, err := strconv.ParseUint(g, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// Current returns the trusted epoch, establishing it first if no call has
// reached the store yet.
func (k *Keeper) Current(ctx context.Context, be Backend) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cur != "" {
		return k.cur, nil
	}
	return k.cur, k.establishLocked(ctx, be)
}

func (k *Keeper) establishLocked(ctx context.Context, be Backend) error {
	stored, err := be.Load(ctx)
	if err != nil {
		return err
	}
	switch {
	case stored == "" && k.expect == "":
		if stored, err = be.Create(ctx, newEpoch(1)); err != nil {
			return err
		}
		k.cur = stored
	case stored == "":
		k.log.Error("budget store has no epoch but this gateway expected one: its data was lost; admission fails until Reinit",
			zap.String("expected", k.expect))
		k.cur = k.expect
		return nil
	case k.expect == "" || stored == k.expect || epochGen(stored) > epochGen(k.expect):
		k.cur = stored
	default:
		k.log.Error("budget store epoch differs from the one this gateway expected: its data was replaced; admission fails until Reinit",
			zap.String("expected", k.expect), zap.String("found", stored))
		k.cur = k.expect
		return nil
	}
	return k.persistLocked()
}

// Adopt is called when a script found stored instead of the trusted epoch.
// It reports whether stored came from an operator's Reinit (a higher
// generation), in which case the call may be retried.
func (k *Keeper) Adopt(stored string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if stored == "" || epochGen(stored) <= epochGen(k.cur) {
		return false
	}
	k.log.Info("budget store was re-initialised by another gateway; adopting its epoch",
		zap.String("old", k.cur), zap.String("new", stored))
	k.cur = stored
	if err := k.persistLocked(); err != nil {
		k.log.Error("cannot persist adopted budget store epoch", zap.Error(err))
	}
	return true
}

// Reinit writes a new epoch of a higher generation (the operator accepts
// the store as it is now) and trusts it.
func (k *Keeper) Reinit(ctx context.Context, be Backend) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	stored, err := be.Load(ctx)
	if err != nil {
		return err
	}
	gen := max(epochGen(stored), epochGen(k.cur), epochGen(k.expect)) + 1
	e := newEpoch(gen)
	if err := be.Store(ctx, e); err != nil {
		return err
	}
	k.log.Warn("budget store re-initialised: caps count from what the store holds now",
		zap.String("old", k.cur), zap.String("new", e))
	k.cur = e
	return k.persistLocked()
}

// persistLocked writes the trusted epoch to the epoch file atomically.
func (k *Keeper) persistLocked() error {
	if k.file == "" {
		return nil
	}
	k.expect = k.cur
	return writeFileAtomic(k.file, []byte(k.cur+"\n"))
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".epoch-*")
	if err != nil {
		return fmt.Errorf("budget: write epoch file: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("budget: write epoch file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename itself durable
		_ = d.Close()
	}
	return nil
}
