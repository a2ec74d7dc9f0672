package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// eachBatchRequest calls fn with the params of each request of a batch
// creation body, in order, and returns how many there were. It decodes one
// request at a time: decoding the whole body at once would copy every
// params object (RawMessage copies), doubling a 200 MB batch in memory.
// The body must be exactly one JSON object, as json.Unmarshal requires.
func eachBatchRequest(body []byte, fn func(i int, params []byte) error) (int, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	bad := func(err error) error { return errBadRequest("request body is not valid JSON: "+jsonErrText(err), err) }
	if err := expectDelim(dec, '{'); err != nil {
		return 0, bad(err)
	}
	n := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return n, bad(err)
		}
		if tok != "requests" {
			var skip json.RawMessage // small top-level fields only
			if err := dec.Decode(&skip); err != nil {
				return n, bad(err)
			}
			continue
		}
		if t, err := dec.Token(); err != nil || t != json.Delim('[') {
			if t == nil && err == nil {
				continue // "requests": null
			}
			return n, bad(errOr(err, "requests must be an array"))
		}
		for dec.More() {
			var rq struct {
				CustomID string      `json:"custom_id"`
				Params   paramsVisit `json:"params"`
			}
			seen := false
			rq.Params.fn = func(params []byte) error { seen = true; return fn(n, params) }
			err := dec.Decode(&rq)
			if err == nil && !seen {
				err = fn(n, nil) // no params: refused like empty ones, never unpriced
			}
			if err != nil {
				var ae *apiError
				if errors.As(err, &ae) {
					return n, err // fn's own refusal
				}
				return n, bad(err)
			}
			n++
		}
		if err := expectDelim(dec, ']'); err != nil {
			return n, bad(err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return n, bad(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return n, bad(errors.New("unexpected data after the JSON object"))
	}
	return n, nil
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if t != d {
		return errors.New("expected " + d.String())
	}
	return nil
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

// paramsVisit hands a request's params to fn while the decoder still holds
// them, so they are neither copied nor kept.
type paramsVisit struct{ fn func([]byte) error }

func (p *paramsVisit) UnmarshalJSON(b []byte) error { return p.fn(b) }
