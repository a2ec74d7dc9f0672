package promtable

import "testing"

func TestCounterAddsToItsSeries(t *testing.T) {
	c := NewCounters("clade_test_total", "Test.", []string{"service", "model"}, nil)
	var none Counter
	if none.Found() {
		t.Fatal("the zero Counter is a series")
	}
	s := c.Counter("recommendation", "claude-sonnet-4-6")
	if !s.Found() || len(c.series()) != 1 {
		t.Fatalf("Counter made %d series, want 1", len(c.series()))
	}
	s.Add(2)
	c.Add(0.5, "recommendation", "claude-sonnet-4-6")
	c.Counter("recommendation", "claude-sonnet-4-6").Add(1)
	if got := c.Value("recommendation", "claude-sonnet-4-6"); got != 3.5 {
		t.Errorf("series value %v, want 3.5", got)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a negative Add did not panic")
			}
		}()
		c.Add(-1, "indexer", "claude-sonnet-4-6")
	}()
	if len(c.series()) != 1 {
		t.Errorf("%d series after a refused Add, want 1", len(c.series()))
	}
}
