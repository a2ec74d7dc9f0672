//go:build unix

package app

import (
	"os"
	"syscall"
)

// tryLock takes an exclusive advisory lock without waiting; the kernel
// drops it when the process dies, so a crash never leaves the folder held.
func tryLock(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) }

func unlock(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
