package boltcommit

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"go.etcd.io/bbolt"
)

// Concurrent updates share commits, and one update's failure fails only
// that update: the others are retried alone and applied exactly once.
func TestCommitterGroupsAndIsolatesFailures(t *testing.T) {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "c.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bkt := []byte("b")
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket(bkt); return err }); err != nil {
		t.Fatal(err)
	}
	c := New(db)
	defer c.Wait()

	boom := errors.New("boom")
	// run starts n concurrent updates at once; update fail returns boom.
	// It returns the updates' errors and the transactions they ran in.
	run := func(n, fail int) ([]error, int) {
		var mu sync.Mutex
		txs := map[int]bool{}
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = c.Update(func(tx *bbolt.Tx) error {
					mu.Lock()
					txs[tx.ID()] = true
					mu.Unlock()
					if i == fail {
						return boom
					}
					b := tx.Bucket(bkt)
					var cur uint64
					if v := b.Get([]byte("n")); v != nil {
						cur = binary.BigEndian.Uint64(v)
					}
					return b.Put([]byte("n"), binary.BigEndian.AppendUint64(nil, cur+1))
				})
			}()
		}
		close(start)
		wg.Wait()
		return errs, len(txs)
	}
	counter := func() (n uint64) {
		_ = db.View(func(tx *bbolt.Tx) error {
			n = binary.BigEndian.Uint64(tx.Bucket(bkt).Get([]byte("n")))
			return nil
		})
		return n
	}

	const n = 200
	errs, txs := run(n, -1)
	for i, err := range errs {
		if err != nil {
			t.Errorf("update %d: %v", i, err)
		}
	}
	if txs >= n {
		t.Errorf("%d concurrent updates ran in %d transactions: none were grouped", n, txs)
	}
	t.Logf("%d concurrent updates ran in %d transactions", n, txs)

	errs, _ = run(50, 7)
	for i, err := range errs {
		if (i == 7) != errors.Is(err, boom) {
			t.Errorf("update %d of the failing round: err %v", i, err)
		}
	}
	if got := counter(); got != n+49 {
		t.Errorf("counter = %d, want %d: a successful update was lost or applied twice", got, n+49)
	}
}
