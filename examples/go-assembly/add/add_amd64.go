package add

// Add is written in assembly on amd64.
func Add(a, b int64) int64
