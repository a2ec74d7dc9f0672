package jsonscan

import "testing"

func TestWatchEachReportsEveryName(t *testing.T) {
	body := []byte(`{"a":"cache_control","b":[{"x":"1\u0068"}],"file_id":1}`)
	names := []string{"file_id", "cache_control", "1h", "absent"}
	v := Validator{Watch: names, Each: true}
	if !Valid(body) {
		t.Fatal("test body is not valid")
	}
	if end, ok := v.ValueEnd(body, 0, 0); !ok || end != len(body) {
		t.Fatalf("ValueEnd = %d, %v", end, ok)
	}
	if !v.Seen || v.Hits != 0b0111 {
		t.Errorf("Seen %v Hits %b, want true 0111", v.Seen, v.Hits)
	}
	// Without Each, watching stops at the first hit.
	first := Validator{Watch: names}
	first.ValueEnd(body, 0, 0)
	if !first.Seen || first.Hits != 0b0010 {
		t.Errorf("Seen %v Hits %b, want true 0010", first.Seen, first.Hits)
	}
}
