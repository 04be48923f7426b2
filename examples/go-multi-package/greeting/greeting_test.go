package greeting

import "testing"

func TestHello(t *testing.T) {
	if got := Hello("x"); got != "HELLO, X!" {
		t.Fatal(got)
	}
}
