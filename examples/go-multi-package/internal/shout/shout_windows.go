//go:build windows

package shout

// Excluded on Linux by its build constraint (and its file name): proves build tags are honoured.
var doesNotCompile int = "on purpose"
