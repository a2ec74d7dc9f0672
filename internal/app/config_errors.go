package app

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// envErrors rewrites env/v11's errors, which name Go struct fields
// ("parse error on field \"HoldTTL\""), into what a person setting the
// variable needs: its name, what it holds and the form it wants.
func envErrors(err error, getenv func(string) string) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("environment: %w", err)
	}
	var lines []string
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			lines = append(lines, e.Error())
			continue
		}
		name := envName(pe.Name)
		lines = append(lines, fmt.Sprintf("%s=%q: %s", name, getenv(name), expectedForm(pe.Type)))
	}
	return fmt.Errorf("environment: %s", strings.Join(lines, "; "))
}

// envName is the variable a config field is read from.
func envName(field string) string {
	if f, ok := reflect.TypeFor[config]().FieldByName(field); ok {
		if k := f.Tag.Get("env"); k != "" {
			return k
		}
	}
	return field
}

func expectedForm(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[time.Duration]():
		return "expected a duration with its unit, such as 60s, 500ms or 5m"
	case reflect.TypeFor[int64](), reflect.TypeFor[int]():
		return "expected a whole number, such as 33554432"
	}
	return "expected a " + t.String()
}

// oneOf refuses a value outside the accepted ones, listing them.
func oneOf(name, v string, accepted ...string) error {
	for _, a := range accepted {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("environment: %s=%q: accepted values are %s", name, v, strings.Join(accepted, ", "))
}
