package settings_test

import (
	"testing"

	"github.com/bodybroker/sdk/settings"
	"github.com/bodybroker/sdk/settings/settingstest"
)

func TestMemoryStore(t *testing.T) {
	settingstest.TestStore(t, func(*testing.T) settings.Store { return &settings.MemoryStore{} })
}
