package grant_test

import (
	"testing"

	"github.com/clade-gateway/clade-gateway/internal/budget/storetest"
)

// TestStoreOpsListed: every operation the grants observe (as the store
// they run on) is one storemetrics.Ops lists, so its error series exists
// from the start.
func TestStoreOpsListed(t *testing.T) { storetest.OpsListed(t) }
