package docker

import (
	"strings"
	"testing"
)

// TestReadStreamProgress: the bytes of a pull's layers are summed as the
// engine's messages move them; a layer that completes counts whole.
func TestReadStreamProgress(t *testing.T) {
	stream := `{"status":"Pulling from app","id":"v1"}
{"status":"Pulling fs layer","id":"a"}
{"status":"Downloading","progressDetail":{"current":100,"total":1000},"id":"a"}
{"status":"Downloading","progressDetail":{"current":50,"total":500},"id":"b"}
{"status":"Downloading","progressDetail":{"current":600,"total":1000},"id":"a"}
{"status":"Download complete","progressDetail":{},"id":"b"}
{"status":"Extracting","progressDetail":{"current":10,"total":500},"id":"b"}
`
	var got [][2]int64
	if err := readStreamProgress(strings.NewReader(stream), func(done, total int64) { got = append(got, [2]int64{done, total}) }); err != nil {
		t.Fatal(err)
	}
	want := [][2]int64{{100, 1000}, {150, 1500}, {650, 1500}, {1100, 1500}}
	if len(got) != len(want) {
		t.Fatalf("reports %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("reports %v, want %v", got, want)
		}
	}
	if err := readStreamProgress(strings.NewReader(`{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}`), nil); err == nil || err.Error() != "manifest unknown" {
		t.Fatalf("error message: %v", err)
	}
}
