package proxy

import (
	"errors"
	"testing"
)

func TestEachBatchRequest(t *testing.T) {
	var got []string
	visit := func(i int, p []byte) error {
		if p == nil {
			return errBadRequest("params: field required", nil)
		}
		got = append(got, string(p))
		return nil
	}
	n, err := eachBatchRequest([]byte(` {"requests":[{"custom_id":"a","params":{"x":1}},{"params":[2],"custom_id":"b"}],"other":{"y":[1,2]}} `), visit)
	if err != nil || n != 2 || len(got) != 2 || got[0] != `{"x":1}` || got[1] != `[2]` {
		t.Fatalf("n=%d err=%v got=%q", n, err, got)
	}
	for _, bad := range []string{
		`{"requests":[{"custom_id":"a"}]}`, // no params: never skipped
		`{"requests":[{"custom_id":"a","params":{}}]} {}`,
		`{"requests":[{"custom_id":"a","params":{}}]`,
		`{"requests":{"custom_id":"a"}}`,
		`[{"custom_id":"a","params":{}}]`,
		`{"requests":[{"custom_id":1,"params":{}}]}`,
	} {
		got = nil
		_, err := eachBatchRequest([]byte(bad), visit)
		var ae *apiError
		if !errors.As(err, &ae) || ae.Status != 400 {
			t.Errorf("%s: %v, want a 400", bad, err)
		}
	}
}
