package meter

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the parsers' output")

// jsonGolden is the expectation for a testdata/*.json response.
type jsonGolden struct {
	Usage Usage
	Found bool
	ID    string
}

func fixtures(t testing.TB, pattern string) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range all {
		if !strings.HasSuffix(f, ".golden.json") {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		t.Fatalf("no fixtures match testdata/%s", pattern)
	}
	return files
}

func goldenPath(fixture string) string {
	return strings.TrimSuffix(fixture, filepath.Ext(fixture)) + ".golden.json"
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkGolden compares got with the golden file, or rewrites it with -update.
func checkGolden[T any](t *testing.T, path string, got T) {
	t.Helper()
	if *update {
		b, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	dec := json.NewDecoder(bytes.NewReader(readFile(t, path)))
	dec.DisallowUnknownFields()
	var want T
	if err := dec.Decode(&want); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// sseChunks feeds the chunks to a fresh parser and returns its result.
func sseChunks(limits Limits, chunks ...[]byte) StreamResult {
	p := NewSSEParser(limits)
	for _, c := range chunks {
		p.Write(c)
	}
	return p.Result()
}

func jsonChunks(limits Limits, chunks ...[]byte) jsonGolden {
	x := NewJSONExtractor(limits)
	for _, c := range chunks {
		x.Write(c)
	}
	u, ok := x.Result()
	return jsonGolden{Usage: u, Found: ok, ID: x.ID()}
}

func TestSSEGolden(t *testing.T) {
	for _, f := range fixtures(t, "*.sse") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			checkGolden(t, goldenPath(f), sseChunks(DefaultLimits(), readFile(t, f)))
		})
	}
}

func TestJSONGolden(t *testing.T) {
	for _, f := range fixtures(t, "*.json") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			checkGolden(t, goldenPath(f), jsonChunks(DefaultLimits(), readFile(t, f)))
		})
	}
}

func TestBatchGolden(t *testing.T) {
	f := filepath.Join("testdata", "batch_results.jsonl")
	var got []BatchResult
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, f)))
	for sc.Scan() {
		r, err := ParseBatchResultLine(sc.Bytes())
		if err != nil {
			t.Fatalf("line %d: %v", len(got)+1, err)
		}
		got = append(got, r)
	}
	checkGolden(t, goldenPath(f), got)
}

// Every fixture gives the same result however the body is split: at every
// single offset into two writes, and one byte per write.
func TestChunkingInvariance(t *testing.T) {
	for _, f := range fixtures(t, "*.sse") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in := readFile(t, f)
			want := sseChunks(DefaultLimits(), in)
			for i := 0; i <= len(in); i++ {
				if got := sseChunks(DefaultLimits(), in[:i], in[i:]); got != want {
					t.Fatalf("split at %d: %s", i, cmp.Diff(want, got))
				}
			}
			if got := sseChunks(DefaultLimits(), bytewise(in)...); got != want {
				t.Fatalf("byte by byte: %s", cmp.Diff(want, got))
			}
		})
	}
	for _, f := range fixtures(t, "*.json") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in := readFile(t, f)
			want := jsonChunks(DefaultLimits(), in)
			for i := 0; i <= len(in); i++ {
				if got := jsonChunks(DefaultLimits(), in[:i], in[i:]); got != want {
					t.Fatalf("split at %d: %s", i, cmp.Diff(want, got))
				}
			}
			if got := jsonChunks(DefaultLimits(), bytewise(in)...); got != want {
				t.Fatalf("byte by byte: %s", cmp.Diff(want, got))
			}
		})
	}
}

func bytewise(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

// The LF fixtures mean the same with CRLF, CR or a mix of line endings.
func TestLineEndingsEquivalent(t *testing.T) {
	for _, f := range fixtures(t, "*.sse") {
		in := readFile(t, f)
		if bytes.IndexByte(in, '\r') >= 0 {
			continue // already a CR variant
		}
		want := sseChunks(DefaultLimits(), in)
		lines := bytes.SplitAfter(in, []byte("\n"))
		endings := []string{"\r\n", "\r", "\n"}
		variants := map[string][]byte{
			"crlf": bytes.ReplaceAll(in, []byte("\n"), []byte("\r\n")),
			"cr":   bytes.ReplaceAll(in, []byte("\n"), []byte("\r")),
		}
		var mixed []byte
		prev := ""
		for i, l := range lines {
			if bytes.HasSuffix(l, []byte("\n")) {
				e := endings[i%3]
				if prev == "\r" && e == "\n" && len(l) == 1 {
					e = "\r\n" // CR then LF would be one ending, not two
				}
				l, prev = append(bytes.TrimSuffix(l, []byte("\n")), e...), e
			}
			mixed = append(mixed, l...)
		}
		variants["mixed"] = mixed
		for name, v := range variants {
			if got := sseChunks(DefaultLimits(), v); got != want {
				t.Errorf("%s as %s: %s", f, name, cmp.Diff(want, got))
			}
			// A CR at the end of one write and its LF at the start of the
			// next are one line ending.
			for i := 1; i < len(v); i++ {
				if v[i-1] == '\r' {
					if got := sseChunks(DefaultLimits(), v[:i], v[i:]); got != want {
						t.Fatalf("%s as %s split after CR at %d: %s", f, name, i, cmp.Diff(want, got))
					}
				}
			}
		}
	}
}
