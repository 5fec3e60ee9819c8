package present

import (
	"testing"
	"time"
)

func TestTook(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2136414 * time.Nanosecond:          "2ms",
		12345 * time.Millisecond:           "12.3s",
		41*time.Minute + 20*time.Second:    "41m",
		2*time.Hour + 5*time.Minute + 10e9: "2h5m",
		3 * time.Hour:                      "3h",
		0:                                  "0s",
	} {
		if got := Took(d); got != want {
			t.Errorf("Took(%s) = %q; want %q", d, got, want)
		}
	}
}
