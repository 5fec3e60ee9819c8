package emulatortest

import (
	"net/http"
	"os"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestHostAnswers(t *testing.T) {
	for _, tt := range []struct {
		name string
		host func(testing.TB) string
	}{
		{"datastore", Host},
		{"firestore", FirestoreHost},
	} {
		t.Run(tt.name, func(t *testing.T) {
			host := tt.host(t)
			resp, err := http.Get("http://" + host + "/")
			if err != nil {
				t.Fatalf("GET emulator health: %v", err)
			}
			resp.Body.Close()
			if got, want := resp.StatusCode, http.StatusOK; got != want {
				t.Fatalf("emulator health = %d; want %d", got, want)
			}
		})
	}
	if a, b := Project(t), Project(t); a == b {
		t.Fatalf("Project() gave %q twice", a)
	}
}
