package redisstore

import (
	"os"
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/budget/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }
