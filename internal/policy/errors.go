package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrInvalid is matched (errors.Is) by every *ValidationError, so callers
// can tell a bad policy from a failure to reach the files at all.
var ErrInvalid = errors.New("policy: invalid")

// Error is one problem in a policy, pinned to where it is written.
type Error struct {
	File string
	Line int    // 0 when the problem is about the file as a whole
	Path string // dotted key path inside File, e.g. services.rec.budgets[0].limit_usd
	Msg  string
}

// Error formats the problem as FILE:LINE: path.to.key: message, the shape
// editors and CI annotators jump to.
func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.Path != "" {
		b.WriteString(": ")
		b.WriteString(e.Path)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// ValidationError holds every problem found in one load, so an operator
// fixes them all in one round instead of one per deploy.
type ValidationError struct {
	Problems []Error
}

// Error lists the problems one per line, sorted by file and line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// problems collects Errors during one load. It is not safe for concurrent
// use; a load is single-threaded.
type problems struct {
	list []Error
}

func (p *problems) add(at pos, format string, args ...any) {
	p.list = append(p.list, Error{File: at.file, Line: at.line, Path: at.path, Msg: fmt.Sprintf(format, args...)})
}

// err returns nil or a *ValidationError with the problems in a stable order.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	out := slices.Clone(p.list)
	slices.SortStableFunc(out, func(a, b Error) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Path, b.Path), cmp.Compare(a.Msg, b.Msg))
	})
	out = slices.Compact(out)
	return &ValidationError{Problems: out}
}

// pos is where a value is written: file, line and key path.
type pos struct {
	file string
	line int
	path string
}

// String is how one place is named inside another problem's message.
func (p pos) String() string {
	return fmt.Sprintf("%s:%d (%s)", p.file, p.line, p.path)
}
