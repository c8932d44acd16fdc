package eventbustest_test

import (
	"testing"

	"github.com/bodybroker/sdk/eventbus/eventbustest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemoryConformance(t *testing.T) { eventbustest.Run(t, eventbustest.Memory()) }
