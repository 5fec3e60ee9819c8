package notifier

import (
	"fmt"

	"github.com/dsexport/dsexport/poller"
)

// ErrorText is an operation's error message with its google.rpc code and
// the code's name, as reports show it.
func ErrorText(op poller.Operation) string { return errorText(op) }

// Count writes n with thousands separators ("21,933,027"), as reports do.
func Count(n int64) string { return thousands(n) }

// Bytes writes n in binary units with one decimal ("11.6 GiB"), without the
// exact count that reports add: for a progress line or a table cell.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[i])
}
