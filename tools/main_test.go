package tools

import (
	"testing"

	"github.com/mcp-guard/mcp-guard/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
