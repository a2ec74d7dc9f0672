package app

// ExitError ends the program with Code. An empty Msg prints nothing: the
// command has already said what it found.
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }
