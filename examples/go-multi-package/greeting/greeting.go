package greeting

import "example.com/multi/internal/shout"

// Hello greets name.
func Hello(name string) string {
	return shout.Loud("hello, " + name)
}
