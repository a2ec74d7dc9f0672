package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// lockFile is held, locked, by the gateway that uses a data folder. bbolt
// locks its own files too, but a second gateway then only says "timeout"
// after a second; this lock says who holds the folder, at once.
const lockFile = "gateway.lock"

// errDataDirBusy is returned when another process holds the data folder.
var errDataDirBusy = errors.New("in use by another process")

// lockDataDir takes the data folder for this process and writes who holds
// it (pid, listen address, start time) into the lock file for the next
// one to read. release unlocks it.
func lockDataDir(dir, listen string, now time.Time) (release func(), err error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data folder %s: %w", dir, err)
	}
	if err := tryLock(f); err != nil {
		holder, _ := os.ReadFile(path)
		_ = f.Close()
		who := strings.Join(strings.Fields(string(holder)), " ")
		if who == "" {
			who = "a process that has not said which"
		}
		return nil, fmt.Errorf("data folder %s is %w (%s; see %s): stop it, or give each gateway its own CLADE_DATA_DIR",
			dir, errDataDirBusy, who, path)
	}
	_ = f.Truncate(0)
	_, _ = fmt.Fprintf(f, "pid %d, listening on %s, since %s\n", os.Getpid(), listen, now.UTC().Format(time.RFC3339))
	_ = f.Sync()
	return func() { _ = unlock(f); _ = f.Close() }, nil
}
