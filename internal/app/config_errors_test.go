package app

import (
	"strings"
	"testing"
)

// A variable in the wrong form is named, with its value and the form it
// wants; Go field names never reach the user.
func TestConfigErrorsNameTheVariable(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"CLADE_HOLD_TTL": "60"}, []string{`CLADE_HOLD_TTL="60"`, "duration with its unit", "60s"}},
		{map[string]string{"CLADE_STORE_TIMEOUT": "soon", "CLADE_MAX_BODY_BYTES": "32MB"},
			[]string{`CLADE_STORE_TIMEOUT="soon"`, `CLADE_MAX_BODY_BYTES="32MB"`, "whole number"}},
		{map[string]string{"CLADE_LOG_FORMAT": "text"}, []string{`CLADE_LOG_FORMAT="text"`, "accepted values are json, console"}},
		{map[string]string{"CLADE_LOG_LEVEL": "verbose"}, []string{`CLADE_LOG_LEVEL="verbose"`, "debug, info, warn, error"}},
	} {
		_, err := loadConfig(func(k string) string { return tc.env[k] })
		if err == nil {
			t.Errorf("%v accepted", tc.env)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q lacks %q", tc.env, err, w)
			}
		}
		if strings.Contains(err.Error(), "field") {
			t.Errorf("%v: error names a Go field: %q", tc.env, err)
		}
	}
}

// The API listens on loopback unless told otherwise: the sample policy's
// demo tokens are public.
func TestListenDefaultsToLoopback(t *testing.T) {
	c, err := loadConfig(func(string) string { return "" })
	if err != nil || !strings.HasPrefix(c.Listen, "127.0.0.1:") || !strings.HasPrefix(c.AdminListen, "127.0.0.1:") {
		t.Errorf("listen %q admin %q err %v", c.Listen, c.AdminListen, err)
	}
}
