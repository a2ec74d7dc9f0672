//go:build !unix

package app

import "os"

// Elsewhere bbolt's own file locks still keep a second gateway out.
func tryLock(*os.File) error { return nil }

func unlock(*os.File) error { return nil }
