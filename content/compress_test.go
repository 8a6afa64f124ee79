package content

import (
	"bytes"
	"crypto/rand"
	"testing"
)

func TestMayCompress(t *testing.T) {
	random := make([]byte, 200<<10)
	rand.Read(random)
	text := bytes.Repeat([]byte("function update(){return fetch('/updates')}\n"), 5000)
	mixed := append(bytes.Clone(random), text...)
	for _, tc := range []struct {
		name string
		data []byte
		want bool
	}{
		{"random", random, false},
		{"text", text, true},
		{"random then text", mixed, true}, // the end sample is text
		{"small random", random[:40<<10], true},
	} {
		if got := mayCompress(tc.data); got != tc.want {
			t.Errorf("%s: mayCompress = %v, want %v", tc.name, got, tc.want)
		}
	}
}
