package shout

import "strings"

// Loud upper-cases s and adds an exclamation mark.
func Loud(s string) string {
	return strings.ToUpper(s) + "!"
}
