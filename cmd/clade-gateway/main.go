// Command clade-gateway is a spend-control reverse proxy for the Anthropic
// API. Run with no arguments it serves; "clade-gateway help" lists the
// other commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/clade-gateway/clade-gateway/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := app.Run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	var exit *app.ExitError
	switch {
	case errors.As(err, &exit):
		if exit.Msg != "" {
			fmt.Fprintln(os.Stderr, "clade-gateway:", exit.Msg)
		}
		os.Exit(exit.Code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "clade-gateway:", err)
		os.Exit(1)
	}
}
