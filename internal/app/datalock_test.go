package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/app"
	"github.com/clade-gateway/clade-gateway/internal/testutil"
)

// A second gateway on the same data folder stops at once and says who holds
// it, instead of bbolt's "timeout" a second later.
func TestSecondGatewayOnSameDataDir(t *testing.T) {
	env := map[string]string{
		"CLADE_CONFIG":       filepath.Join("..", "..", "deploy", "clade.yaml"),
		"ANTHROPIC_API_KEY":  testutil.CanaryKey,
		"CLADE_UPSTREAM_URL": "http://127.0.0.1:1",
	}
	first := testutil.StartApp(t, env)
	second := map[string]string{
		"CLADE_LISTEN":       "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)),
		"CLADE_ADMIN_LISTEN": "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)),
		"CLADE_DATA_DIR":     first.Dir,
	}
	for k, v := range env {
		second[k] = v
	}
	err := app.Run(context.Background(), nil, func(k string) string { return second[k] }, nil, &testutil.Buffer{}, &testutil.Buffer{})
	if err == nil {
		t.Fatal("a second gateway started on a data folder in use")
	}
	for _, want := range []string{"data folder " + first.Dir + " is in use by another process", "pid " + strconv.Itoa(os.Getpid()),
		"listening on " + strings.TrimPrefix(first.URL, "http://"), "CLADE_DATA_DIR"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// Once the first has stopped, the folder is free again.
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	testutil.StartApp(t, second)
}
