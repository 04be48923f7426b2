// Package banner frames a line of text.
package banner

import "strings"

// Frame draws a box around s.
func Frame(s string) string {
	line := "+" + strings.Repeat("-", len(s)+2) + "+"
	return line + "\n| " + s + " |\n" + line
}
