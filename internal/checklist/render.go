package checklist

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteText prints the report grouped by heading, one line per item:
//
//	rotation
//	  FAIL key_rotation: 1 key needs rotating: key production/main is 140 days old (over 90). To do: add a new key ...
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	head := ""
	for _, it := range r.Items {
		if it.Heading != head {
			if head != "" {
				b.WriteByte('\n')
			}
			head = it.Heading
			b.WriteString(head)
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "  %s %s: %s", it.Status, it.ID, it.Reason)
		if it.Action != "" {
			fmt.Fprintf(&b, ". To do: %s", it.Action)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "\n%d pass, %d warn, %d fail\n", r.Summary.Pass, r.Summary.Warn, r.Summary.Fail)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as one JSON document (every finding in each
// item's details).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
