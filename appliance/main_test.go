package appliance

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(childRoleEnv); role != "" {
		os.Exit(runChildRole(role))
	}
	code := m.Run()
	os.RemoveAll(testShmBase)
	os.Exit(code)
}
