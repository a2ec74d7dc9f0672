package boltstore

import (
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"
)

func TestPrincipalsFirstSight(t *testing.T) { storetest.PrincipalsFirstSight(t, boltHarness) }
